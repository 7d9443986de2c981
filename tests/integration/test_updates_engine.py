"""Master updates with the REAL engine: `born` records upserted into `linkage.engine` (no reload) make
members linkable that the master lacked; the applier publishes `merged` to the master person's id.
A fourth `born` record, spelled and dated unlike the survey, shares only non-NIK, non-name, non-date
blocking keys with its (NIK-less) member: it is found by the engine's blocking-key hashes.

A generated world and a freshly trained model (shared fixture of the linker's engine test); the
master given to the engine lacks three people who are in the survey. In-process (the broker path is
covered by test_updates_service.py with the fake engine).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from contracts.decode import ContractViolation, decode_family_submission
from contracts.linkage_outputs import LinkedMember, MemberDecision, PersonIdKind
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from integration.ids import PersonIds
from linkage.records import family_key_string
from services.kafka.record import KafkaRecord
from services.linker.engine_adapter import load_village_crosswalk
from services.linker.engine_link import EngineMemberLinker
from services.linker.member_state import Probe, name_key
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore
from services.linker.updates.applier import ChangeApplier, UpdateTopics
from services.linker.updates.changes import Change, classify_change
from services.linker.updates.handler import StoreMemberIndex
from tests.support.linking import link_batch

pytestmark = [pytest.mark.slow]

IDS = PersonIds(b"engine-updates-test")


def _born(row: dict[str, object], change_id: str) -> bytes:
    rec = {k: row[k] for k in ("nik", "kk_number", "full_name", "sex", "village_code", "district_code", "address")}
    rec.update({"birth_date": row["birth_date"].isoformat(), "status": "alive"})  # type: ignore[attr-defined]
    doc = {
        "schema_version": "1",
        "change": "born",
        "change_id": change_id,
        "effective_date": "2023-03-01",
        "record": rec,
    }
    return json.dumps(doc).encode()


def test_born_records_upserted_into_the_real_engine_merge_unlinked_members(
    world_and_model: tuple[Path, Path], tmp_path: Path
) -> None:
    world, model = world_and_model
    truth = pq.read_table(world / "truth.parquet").to_pylist()
    members = [t for t in truth if t["source"] == "member" and t["true_nik"]]
    uses = Counter(t["true_nik"] for t in members)
    clean = [t for t in members if t["noise"] == "" and uses[t["true_nik"]] == 1]
    assert len(clean) >= 3
    targets = {t["member_key"]: t["true_nik"] for t in clean[:3]}
    # A member surveyed without a NIK; Dukcapil's record will carry another spelling and birth day.
    (hidden,) = [t for t in members if t["noise"] == "nik_missing" and uses[t["true_nik"]] == 1][:1]
    hidden_key, hidden_nik = hidden["member_key"], hidden["true_nik"]

    # The engine's world: the same files, the master without the three people.
    reduced = tmp_path / "world"
    reduced.mkdir()
    for name in ("crosswalk.parquet", "dtks.parquet", "bpjs.parquet"):
        shutil.copy(world / name, reduced / name)
    population = pq.read_table(world / "population.parquet")
    missing = pc.is_in(population["nik"], value_set=pa.array(sorted({*targets.values(), hidden_nik})))
    pq.write_table(population.filter(pc.invert(missing)), reduced / "population.parquet")
    rows = {r["nik"]: r for r in population.filter(missing).to_pylist()}

    linker = EngineMemberLinker.from_files(reduced, model, cache_dir=tmp_path / "cache")
    store = LinkStore(tmp_path / "links.duckdb")
    crosswalk = load_village_crosswalk(LinkerSettings(world_dir=reduced, model_path=model))
    pipeline = SubmissionLinker(linker, IDS, OutputTopics("m", "f", "r"), village_crosswalk=crosswalk)
    before: dict[str, LinkedMember] = {}
    for line in (world / "submissions.jsonl").read_text().splitlines():
        key = family_key_string(json.loads(line)["family_key"]).encode()
        try:
            sub = decode_family_submission(line.encode(), key=key)
        except ContractViolation:
            continue
        result = link_batch(pipeline, store, [sub])
        store.apply(result.update)
        for rec in result.records:
            wanted = rec.key is not None and rec.key.decode() in {*targets, hidden_key}
            if rec.topic == "m" and rec.value is not None and rec.key is not None and wanted:
                before[rec.key.decode()] = LinkedMember.model_validate_json(rec.value)
    assert set(before) == {*targets, hidden_key}
    truth_of = {**targets, hidden_key: hidden_nik}
    assert all(m.matched_nik != truth_of[k] for k, m in before.items())  # the master lacks them

    index = StoreMemberIndex(lambda: {0: store})
    applier = ChangeApplier(linker, index, IDS, UpdateTopics("m", "r", "u", "f"))
    changes = []
    # Dukcapil's record of the hidden member: a doubled letter (same phonetic code), the next day.
    record = dict(rows[hidden_nik])
    record["full_name"] = _respelled(str(record["full_name"]))
    born_on = record["birth_date"]
    record["birth_date"] = born_on + dt.timedelta(days=1 if born_on.day < 28 else -1)  # type: ignore[operator]
    rows[hidden_nik] = record
    (stored,) = [s for s in index.find_families([hidden_key.rsplit("-", 1)[0]]) if s.member_key == hidden_key]
    assert stored.decision != "linked" and not stored.query.nik
    old_probe = Probe(
        niks=frozenset({hidden_nik}),
        birth_dates=frozenset({record["birth_date"].isoformat()}),
        name_keys=frozenset({name_key(record["full_name"])}),
    )
    assert hidden_key not in {s.member_key for s in index.find(old_probe)}  # the former probe misses it
    for i, nik in enumerate([*sorted(targets.values()), hidden_nik]):
        change = classify_change(
            _born(rows[nik], f"born-{i}"), b"r", KafkaRecord("t", 0, i, None, None, 0), "population", max_bytes=1 << 20
        )
        assert isinstance(change, Change)
        changes.append(change)
    applied = applier.process(changes)

    after = {
        r.key.decode(): LinkedMember.model_validate_json(r.value)
        for r in applied.records
        if r.topic == "m" and r.key is not None and r.value is not None
    }
    events: dict[str, list[str]] = {}
    merged: dict[str, tuple[str, str]] = {}
    for r in applied.records:
        if r.topic == "u" and r.key is not None and r.value is not None:
            event = LINKAGE_UPDATE_ADAPTER.validate_json(r.value)
            events.setdefault(event.member_key, []).append(event.event)
            if event.event == "merged":
                merged[event.member_key] = (event.old_person_id, event.new_person_id)
    for key, nik in targets.items():
        assert (after[key].decision, after[key].matched_nik) == (MemberDecision.LINKED, nik)
        assert after[key].person_id == IDS.for_master(nik)
        # other changes of the batch may touch the member too (a relative born, sharing the KK number):
        # those give `link_changed` (a new runner-up), the member's own record gives its merge
        seen = events[key]
        if before[key].person_id_kind is PersonIdKind.MINTED:
            at = seen.index("link_created")
            assert seen[at : at + 2] == ["link_created", "merged"]
            assert set(seen[:at] + seen[at + 2 :]) <= {"link_changed"}
            assert merged[key] == (before[key].person_id, IDS.for_master(nik))
        else:  # linked to a wrong master person before: another master id now
            assert set(seen) == {"link_changed"}
    # The hidden member is re-linked against its Dukcapil record: linked to it, or sent to review with it.
    tasks = {
        r.key.decode(): json.loads(r.value)
        for r in applied.records
        if r.topic == "r" and r.key is not None and r.value is not None
    }
    assert after[hidden_key].matched_nik == hidden_nik or tasks[hidden_key]["candidate_nik"] == hidden_nik
    assert events[hidden_key]
    # Every re-emitted member record comes with an update event telling why.
    assert set(after) <= set(events)


def _respelled(name: str) -> str:
    """The name with its first consonant after the first letter doubled (the phonetic code stays)."""
    for i, c in enumerate(name[1:], start=1):
        if c.isalpha() and c.upper() not in "AEIOUH":
            return name[: i + 1] + c + name[i + 1 :]
    return name + "H"
