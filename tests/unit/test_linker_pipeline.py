"""The linker's batch pipeline with a fake engine: exact records, revisions, person ids, idempotence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from contracts.decode import decode_family_submission
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch

TOPICS = OutputTopics(members="m", families="f", review="r")
SURVEY_KK = "3603121705150003"
OTHER_KK = "3603121705150004"
AHMAD, SITI, HASAN = nik_for(2), nik_for(3, female=True), nik_for(4, yy=40)
IDS = PersonIds(b"test-key")


def _fake() -> FakeMemberLinker:
    return FakeMemberLinker.of(
        [
            FakeMasterPerson(AHMAD, "Ahmad Fauzi", SURVEY_KK, dtks_id="DTKS-1", bpjs_id="0001234567890"),
            FakeMasterPerson(SITI, "Siti Aminah", SURVEY_KK),
            FakeMasterPerson(HASAN, "Hasan Basri", OTHER_KK, deceased=True),
        ]
    )


def _submission(
    revision: int = 1, members: list[dict[str, object]] | None = None, family_key: str = FAMILY_KEY
) -> FamilySubmission:
    if members is None:
        members = [
            member_payload(1, "Ahmad Fauzi", AHMAD),
            member_payload(2, "Sity Aminah", SITI, sex=2, relationship=2),
            member_payload(3, "Budi", None, relationship=3, birth=(None, None, 2010)),
            member_payload(4, "Hasan Basri", HASAN, relationship=6, birth=(15, 5, 1940)),
        ]
    doc = submission_payload(members, revision=revision, family_key=family_key)
    return decode_family_submission(json.dumps(doc).encode(), key=family_key.encode())


@pytest.fixture()
def store(tmp_path: Path) -> LinkStore:
    return LinkStore(tmp_path / "links.duckdb")


def _linker(fake: FakeMemberLinker | None = None, max_members: int = 1000) -> SubmissionLinker:
    return SubmissionLinker(fake or _fake(), IDS, TOPICS, max_members_per_call=max_members)


def _by_topic(result: object) -> dict[str, dict[str, dict[str, object] | None]]:
    out: dict[str, dict[str, dict[str, object] | None]] = {}
    for rec in result.records:  # type: ignore[attr-defined]
        out.setdefault(rec.topic, {})[rec.key.decode()] = None if rec.value is None else json.loads(rec.value)
    return out


def test_one_family_gives_exact_member_review_and_family_records(store: LinkStore) -> None:
    result = link_batch(_linker(), store, [_submission()])
    topics = _by_topic(result)
    members = topics["m"]
    assert sorted(members) == [f"{FAMILY_KEY}-0{i}" for i in (1, 2, 3, 4)]
    ahmad = members[f"{FAMILY_KEY}-01"]
    assert ahmad == {
        "schema_version": "1",
        "member_key": f"{FAMILY_KEY}-01",
        "family_key": FAMILY_KEY,
        "serial": 1,
        "submission_id": f"S-{FAMILY_KEY}-r1",
        "revision": 1,
        "decision": "linked",
        "band": "auto_link",
        "probability": 0.999,
        "match_weight": 12.5,
        "runner_up_weight": -3.0,
        "explanation": {"full_name": 2.5, "nik": 10.0},
        "matched_nik": AHMAD,
        "person_id": IDS.for_master(AHMAD),
        "person_id_kind": "master",
        "sectoral": {"dtks_id": "DTKS-1", "bpjs_id": "0001234567890"},
        "model_version": "fake-1",
        # the submission's enumerated_at (2022-10-20T09:15:00+07:00) in UTC
        "event_time": "2022-10-20T02:15:00Z",
    }
    siti = members[f"{FAMILY_KEY}-02"]
    assert siti is not None
    assert (siti["decision"], siti["band"], siti["matched_nik"], siti["person_id_kind"]) == (
        "pending_review",
        "review",
        None,
        "minted",
    )
    assert siti["person_id"] == IDS.mint(f"{FAMILY_KEY}-02")
    budi = members[f"{FAMILY_KEY}-03"]
    assert budi is not None
    assert (budi["decision"], budi["band"], budi["probability"], budi["matched_nik"]) == (
        "not_linked",
        "no_match",
        None,
        None,
    )
    # Only the review-band member gets a review task, with the candidate's NIK for the clerk.
    assert topics["r"] == {
        f"{FAMILY_KEY}-02": {
            "schema_version": "1",
            "task_id": f"{FAMILY_KEY}-02/r1",
            "member_key": f"{FAMILY_KEY}-02",
            "submission_id": f"S-{FAMILY_KEY}-r1",
            "revision": 1,
            "candidate_nik": SITI,
            "candidate_person_id": IDS.for_master(SITI),
            "probability": 0.6,
            "match_weight": 1.25,
            "runner_up_weight": -3.0,
            "explanation": {"full_name": -8.75, "nik": 10.0},
            "model_version": "fake-1",
            "event_time": "2022-10-20T02:15:00Z",
        }
    }
    # every record of the submission carries its enumeration time, as a field and for the headers
    assert {r.event_time for r in result.records} == {dt.datetime(2022, 10, 20, 2, 15, tzinfo=dt.UTC)}
    family = topics["f"][FAMILY_KEY]
    assert family is not None
    assert family["flags"] == {
        "kk_mismatch": True,
        "members_not_in_master": True,
        "deceased_in_master_present_in_survey": True,
    }
    assert family["master_kk_numbers"] == [SURVEY_KK, OTHER_KK]
    assert family["not_in_master_serials"] == [3]
    assert family["deceased_in_master_serials"] == [4]
    assert family["event_time"] == "2022-10-20T02:15:00Z"
    refs = family["members"]
    assert isinstance(refs, list)
    assert [m["person_id"] for m in refs] == [
        IDS.for_master(AHMAD),
        IDS.mint(f"{FAMILY_KEY}-02"),
        IDS.mint(f"{FAMILY_KEY}-03"),
        IDS.for_master(HASAN),
    ]
    assert (result.families_linked, result.members_linked, result.stale) == (1, 4, 0)


def test_reprocessing_yields_byte_identical_records(store: LinkStore) -> None:
    linker = _linker()
    first = link_batch(linker, store, [_submission()])
    store.apply(first.update)
    again = link_batch(linker, store, [_submission()])
    assert again.records == first.records
    # A fresh store (e.g. another machine replaying the topic) gives the same bytes too.
    fresh = link_batch(_linker(), LinkStore(":memory:"), [_submission()])
    assert fresh.records == first.records


def test_no_raw_nik_is_used_as_an_id(store: LinkStore) -> None:
    result = link_batch(_linker(), store, [_submission()])
    for rec in result.records:
        assert rec.key is not None and AHMAD.encode() not in rec.key
    assert AHMAD not in IDS.for_master(AHMAD)
    assert IDS.for_master(AHMAD) != PersonIds(b"another-key").for_master(AHMAD)


def test_a_late_older_revision_changes_nothing(store: LinkStore) -> None:
    linker = _linker()
    store.apply(link_batch(linker, store, [_submission(revision=2)]).update)
    late = link_batch(linker, store, [_submission(revision=1)])
    assert late.records == []
    assert late.stale == 1
    assert store.families([FAMILY_KEY])[FAMILY_KEY].revision == 2


def test_a_newer_revision_replaces_and_tombstones_dropped_members(store: LinkStore) -> None:
    linker = _linker()
    store.apply(link_batch(linker, store, [_submission(revision=1)]).update)
    newer = link_batch(linker, store, [_submission(revision=2, members=[member_payload(1, "Ahmad Fauzi", AHMAD)])])
    topics = _by_topic(newer)
    assert topics["m"][f"{FAMILY_KEY}-01"]["revision"] == 2  # type: ignore[index]
    # Members 2-4 are gone in revision 2: tombstones for the compacted topic.
    assert {k: v for k, v in topics["m"].items() if v is None} == {
        f"{FAMILY_KEY}-02": None,
        f"{FAMILY_KEY}-03": None,
        f"{FAMILY_KEY}-04": None,
    }
    assert topics["f"][FAMILY_KEY]["revision"] == 2  # type: ignore[index]
    assert "r" not in topics


def test_in_one_batch_the_highest_revision_wins(store: LinkStore) -> None:
    result = link_batch(_linker(), store, [_submission(revision=3), _submission(revision=2)])
    family = _by_topic(result)["f"][FAMILY_KEY]
    assert family is not None and family["revision"] == 3
    assert result.stale == 1


def test_minted_ids_are_kept_in_the_link_store(store: LinkStore) -> None:
    result = link_batch(_linker(), store, [_submission()])
    store.apply(result.update)
    assert store.minted_ids([f"{FAMILY_KEY}-02", f"{FAMILY_KEY}-03", f"{FAMILY_KEY}-01"]) == {
        f"{FAMILY_KEY}-02": IDS.mint(f"{FAMILY_KEY}-02"),
        f"{FAMILY_KEY}-03": IDS.mint(f"{FAMILY_KEY}-03"),
    }
    assert store.counts() == {"families": 1, "minted_ids": 2}


def test_engine_calls_are_bounded_by_the_member_budget(store: LinkStore) -> None:
    fake = _fake()
    keys = [f"36030100010001000010{i:02d}" for i in range(1, 6)]
    subs = [_submission(family_key=k) for k in keys]  # 5 families x 4 members
    result = link_batch(_linker(fake, max_members=9), store, subs)
    # Families are not split while they fit: 2 + 2 + 1 families.
    assert fake.batch_sizes == [8, 8, 4]
    assert result.members_linked == 20


def test_an_engine_failure_propagates(store: LinkStore) -> None:
    fake = _fake()
    fake.fail_with = ConnectionError("engine down")
    with pytest.raises(ConnectionError):
        link_batch(_linker(fake), store, [_submission()])
    assert store.counts() == {"families": 0, "minted_ids": 0}


def test_the_store_never_moves_a_revision_backwards(store: LinkStore) -> None:
    from services.linker.store import FamilyState, StoreUpdate

    store.apply(StoreUpdate(families={FAMILY_KEY: FamilyState(3, "S-r3", (1, 2))}, minted={"k-01": "u-a"}))
    store.apply(StoreUpdate(families={FAMILY_KEY: FamilyState(2, "S-r2", (1,))}, minted={"k-01": "u-b"}))
    assert store.families([FAMILY_KEY]) == {FAMILY_KEY: FamilyState(3, "S-r3", (1, 2))}
    assert store.minted_ids(["k-01"]) == {"k-01": "u-a"}
    store.apply(StoreUpdate(families={FAMILY_KEY: FamilyState(4, "S-r4", (2,))}))
    assert store.families([FAMILY_KEY])[FAMILY_KEY] == FamilyState(4, "S-r4", (2,))


def test_a_link_store_in_use_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    held = LinkStore(tmp_path / "links.duckdb")
    code = (
        "import sys\nfrom services.linker.storage_errors import LinkStoreError\n"
        "from services.linker.store import LinkStore\n"
        f"try:\n    LinkStore({str(tmp_path / 'links.duckdb')!r})\n"
        "except LinkStoreError as e:\n    print(e); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    held.close()
    assert done.returncode == 3, done.stderr
    assert "another linker" in done.stdout
