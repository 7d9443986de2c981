"""The linker pipeline emits field feedback: records on the feedback topic, state in the link store, closing
on a corrected revision, duplicates across families, byte-identical re-processing."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.decode import decode_family_submission
from contracts.feedback import FIELD_FEEDBACK_ADAPTER, FeedbackStatus, FieldFeedback
from contracts.partitioning import partition_for
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from services.linker.pipeline import BatchResult, OutputTopics, SubmissionLinker
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

TOPICS = OutputTopics(members="m", families="f", review="r", feedback="fb")
KK = "3603121705150003"
AHMAD, SITI, HASAN = nik_for(2), nik_for(3, female=True), nik_for(4, yy=40)
UNKNOWN = nik_for(9)
OTHER_FAMILY = "3603010001000100002001"
IDS = PersonIds(b"test-key")


def _fake() -> FakeMemberLinker:
    return FakeMemberLinker.of(
        [
            FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK),
            FakeMasterPerson(SITI, "Siti Aminah", KK),
            FakeMasterPerson(HASAN, "Hasan Basri", KK, deceased=True),
        ]
    )


def _sub(members: list[dict[str, object]], revision: int = 1, family_key: str = FAMILY_KEY) -> FamilySubmission:
    doc = submission_payload(members, revision=revision, family_key=family_key, kk_number=KK)
    return decode_family_submission(json.dumps(doc).encode(), key=family_key.encode())


def _feedback(result: BatchResult) -> list[FieldFeedback]:
    return [FIELD_FEEDBACK_ADAPTER.validate_json(r.value or b"") for r in result.records if r.topic == "fb"]


def _family(nik_of_ahmad: str = UNKNOWN, family_key: str = FAMILY_KEY, revision: int = 1) -> FamilySubmission:
    return _sub(
        [
            member_payload(1, "Ahmad Fauzi", nik_of_ahmad),
            member_payload(2, "Siti Aminah", SITI, sex=2, relationship=2),
            member_payload(3, "Hasan Basri", HASAN, relationship=6, birth=(15, 5, 1940)),
        ],
        revision=revision,
        family_key=family_key,
    )


def test_items_are_emitted_kept_in_the_store_and_closed_by_a_corrected_revision(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    linker = SubmissionLinker(_fake(), IDS, TOPICS)
    first = link_batch(linker, store, [_family()], ["team-a"])
    assert [(f.item_id, f.status, f.team) for f in _feedback(first)] == [
        (f"{FAMILY_KEY}/dead_in_master/03", FeedbackStatus.OPEN, "team-a"),
        (f"{FAMILY_KEY}/nik_not_in_master/01", FeedbackStatus.OPEN, "team-a"),
    ]
    assert first.feedback == _feedback(first)
    # Keyed by item id, on the family's partition number (co-partitioned with its family record).
    fb_keys = [r.key for r in first.records if r.topic == "fb"]
    family_key = next(r.key for r in first.records if r.topic == "f")
    assert fb_keys == [f.item_id.encode() for f in first.feedback]
    assert {partition_for(k or b"", 4) for k in fb_keys} == {partition_for(family_key or b"", 4)}
    store.apply(first.update)
    store.close()

    # Reopened (a restart): the open items are remembered; revision 2 corrects Ahmad's NIK.
    store = LinkStore(tmp_path / "links.duckdb")
    second = link_batch(SubmissionLinker(_fake(), IDS, TOPICS), store, [_family(AHMAD, revision=2)], ["team-a"])
    closed = _feedback(second)
    assert [(f.item_id, f.status, f.raised_revision, f.closed_revision) for f in closed] == [
        (f"{FAMILY_KEY}/nik_not_in_master/01", FeedbackStatus.CLOSED, 1, 2),
    ]
    assert second.update.families[FAMILY_KEY].open_feedback == (f"dead_in_master|3|1|S-{FAMILY_KEY}-r1",)


def test_reprocessing_a_batch_gives_byte_identical_feedback(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    linker = SubmissionLinker(_fake(), IDS, TOPICS)
    once = link_batch(linker, store, [_family()], ["team-a"])
    again = link_batch(linker, store, [_family()], ["team-a"])  # the store was not written: a crash before it
    assert [(r.key, r.value) for r in once.records if r.topic == "fb"] == [
        (r.key, r.value) for r in again.records if r.topic == "fb"
    ]
    store.apply(once.update)
    # After the store has the revision, a re-delivery raises nothing new (the items stay open).
    assert _feedback(link_batch(linker, store, [_family()], ["team-a"])) == []


def test_no_team_no_feedback_and_no_topic_no_records(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    result = link_batch(SubmissionLinker(_fake(), IDS, TOPICS), store, [_family()], [None])
    assert result.feedback == [] and _feedback(result) == []
    assert result.update.families[FAMILY_KEY].open_feedback == ()
    silent = link_batch(SubmissionLinker(_fake(), IDS, OutputTopics("m", "f", "r")), store, [_family()], ["team-a"])
    assert len(silent.feedback) == 2 and {r.topic for r in silent.records} == {"m", "f"}


def test_duplicate_family_from_the_store_and_from_earlier_in_the_batch(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    linker = SubmissionLinker(_fake(), IDS, TOPICS)
    original, copy = _family(AHMAD), _family(AHMAD, family_key=OTHER_FAMILY)
    # Same batch: the later one is the duplicate, the earlier one is not.
    both = link_batch(linker, store, [original, copy], ["team-a", "team-a"])
    dup = [f for f in both.feedback if f.kind == "duplicate_family"]
    assert [(f.item_id, f.other_family_key) for f in dup] == [(f"{OTHER_FAMILY}/duplicate_family", FAMILY_KEY)]
    # From the store: the original was stored in an earlier batch; another team sees no family key.
    store.apply(link_batch(linker, store, [original], ["team-a"]).update)
    foreign = link_batch(linker, store, [copy], ["team-b"])
    dup = [f for f in foreign.feedback if f.kind == "duplicate_family"]
    assert [(f.item_id, f.team, f.other_family_key) for f in dup] == [
        (f"{OTHER_FAMILY}/duplicate_family", "team-b", None)
    ]
    assert FAMILY_KEY not in dup[0].message
