"""The link-state changelog (services/linker/changelog.py): record encoding, the restore rule, and the
handler's changelog records, with fakes of the changelog reader and the producer."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contracts.review_decisions import ReviewOutcome
from integration.clerical import AppliedDecision
from integration.ids import PersonIds
from integration.port import MemberQuery
from services.linker import changelog
from services.linker.app import SubmissionHandler
from services.linker.changelog import ChangelogVersionError, FamilyRecord
from services.linker.member_state import MemberState
from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.pipeline import OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.settings import LinkerSettings
from services.linker.store import FamilyState, LinkStore, StoreUpdate
from tests.support.linker import (
    FAMILY_KEY,
    FakeEvent,
    FakeMasterPerson,
    FakeMemberLinker,
    FakeMessage,
    member_payload,
    nik_for,
    submission_payload,
)

OTHER_FAMILY = "3603120001000100200002"


def _query(member_key: str, nik: str = "", **kw: Any) -> MemberQuery:
    base: dict[str, Any] = {
        "record_id": member_key,
        "nik": nik,
        "kk_number": "3603121705150003",
        "full_name": "Siti Nurhaliza",
        "sex": "F",
        "birth_date": "1980-05-15",
        "birth_year": 1980,
        "age": 42,
        "reference_year": 2022,
        "village_code": "3603122001",
        "address": "Jl. Melati No. 12 RT 002 RW 005",
        "family_key": member_key[:22],
        "head_name": "Ahmad Fauzi",
        "relationship": 2,
        "submission_id": "S-r2",
    }
    base.update(kw)
    return MemberQuery(**base)


def _member(family_key: str, serial: int, partition: int = 0, **kw: Any) -> MemberState:
    key = f"{family_key}-{serial:02d}"
    base: dict[str, Any] = {
        "member_key": key,
        "family_key": family_key,
        "revision": 2,
        "decision": "linked",
        "link_nik": nik_for(serial),
        "query": _query(key, nik_for(serial)),
        "member_json": f'{{"member_key":"{key}","name":"Ñoño ë"}}'.encode(),
        "family_json": b'{"family_key":"x"}',
        "master_kk": "3603121705150003",
        "master_dead": False,
        "present": True,
        "partition": partition,
        "blocking_keys": (-5, 0, 9_000_000_000_000_000_000),
    }
    base.update(kw)
    return MemberState(**base)


def _record(family_key: str = FAMILY_KEY, revision: int = 2, serials: tuple[int, ...] = (1, 2)) -> FamilyRecord:
    members = tuple(_member(family_key, s, partition=3, revision=revision) for s in serials)
    state = FamilyState(revision, f"S-r{revision}", serials, "team-a", ("nik/01", "kk"))
    minted = {f"{family_key}-{s:02d}": f"P{s:03d}" for s in (*serials, 9)}
    return FamilyRecord(family_key, state, minted, members)


def test_a_record_round_trips_exactly() -> None:
    record = _record()
    assert changelog.decode(changelog.encode(record), 3) == record


def test_a_record_round_trips_nulls_and_empty_values() -> None:
    member = _member(
        FAMILY_KEY,
        1,
        partition=1,
        link_nik=None,
        decision="not_found",
        master_kk=None,
        master_dead=True,
        present=False,
        blocking_keys=None,
        query=_query(f"{FAMILY_KEY}-01", birth_year=None, age=None, relationship=None, birth_date=""),
    )
    record = FamilyRecord(FAMILY_KEY, FamilyState(1, "S-r1", (1,), None, ()), {}, (member,))
    assert changelog.decode(changelog.encode(record), 1) == record


def test_encoding_is_canonical_whatever_the_order_of_the_state() -> None:
    record = _record()
    shuffled = dataclasses.replace(
        record, minted=dict(reversed(list(record.minted.items()))), members=tuple(reversed(record.members))
    )
    assert changelog.encode(shuffled) == changelog.encode(record)
    doc = json.loads(changelog.encode(record))
    assert doc["v"] == 4 and doc["family_key"] == FAMILY_KEY and doc["revision"] == 2
    assert [m["member_key"] for m in doc["members"]] == [f"{FAMILY_KEY}-01", f"{FAMILY_KEY}-02"]


def test_a_record_of_an_unknown_version_is_refused() -> None:
    doc = json.loads(changelog.encode(_record()))
    doc["v"] = 5
    with pytest.raises(ChangelogVersionError, match="version 5"):
        changelog.decode(json.dumps(doc).encode(), 0)


def _older_layout(record: FamilyRecord, version: int) -> dict[str, Any]:
    """The record as layout 1 or 2 wrote it: each member with its family record's text."""
    doc: dict[str, Any] = json.loads(changelog.encode(record))
    shared = doc.pop("family_jsons")
    for m in doc["members"]:
        m["family_json"] = shared[m["family_json"]]
    doc["v"] = version
    return doc


def test_a_layout_1_record_without_decisions_is_still_read() -> None:
    doc = _older_layout(_record(), 1)
    del doc["decisions"]
    assert changelog.decode(json.dumps(doc).encode(), 3) == _record()


def test_a_layout_2_record_is_still_read() -> None:
    record = dataclasses.replace(_record(), decisions=(_decision(f"{FAMILY_KEY}-01", 0),))
    assert changelog.decode(json.dumps(_older_layout(record, 2)).encode(), 3) == record


def test_a_layout_3_record_is_still_read() -> None:
    record = dataclasses.replace(_record(), decisions=(_decision(f"{FAMILY_KEY}-01", 0),))
    doc = json.loads(changelog.encode(record))
    doc["v"] = 3  # layout 4 only added the decision-positions record: a family record is as in 3
    assert changelog.decode(json.dumps(doc).encode(), 3) == record
    old = {"v": 3, "change_positions": [["pop", 0, 5]]}
    assert changelog.decode_any(json.dumps(old).encode(), 0) == changelog.PositionsRecord({("pop", 0): 5})


def test_a_family_record_is_held_once_per_record_and_distinct_ones_stay_apart() -> None:
    record = _record()
    same = json.loads(changelog.encode(record))
    assert len(same["family_jsons"]) == 1 and [m["family_json"] for m in same["members"]] == [0, 0]
    # members whose family record differs (an update re-linked one member after the last submission)
    first, second = sorted(record.members, key=lambda m: m.member_key)
    apart = dataclasses.replace(record, members=(first, dataclasses.replace(second, family_json=b'{"other":1}')))
    doc = json.loads(changelog.encode(apart))
    assert doc["family_jsons"] == [first.family_json.decode(), '{"other":1}']
    assert [m["family_json"] for m in doc["members"]] == [0, 1]
    assert changelog.decode(changelog.encode(apart), 3) == apart
    assert len(changelog.encode(record)) < len(json.dumps(_older_layout(record, 2)))


def _decision(member_key: str, n: int, **kw: Any) -> AppliedDecision:
    base: dict[str, Any] = {
        "decision_id": f"d{n}",
        "task_id": f"{member_key}/r2",
        "member_key": member_key,
        "sequence": n,
        "outcome": ReviewOutcome.ACCEPT,
        "chosen_nik": nik_for(7),
        "probability": 0.3,
        "match_weight": -1.25,
        "identity": "id-digest",
        "revokes": None,
        "reviewer_id": "rina",
        "held": False,
    }
    base.update(kw)
    return AppliedDecision(**base)


def test_a_record_with_decisions_round_trips_in_the_order_applied() -> None:
    later = _decision(f"{FAMILY_KEY}-01", 1, outcome=ReviewOutcome.UNDO, chosen_nik=None, revokes="d0")
    first = _decision(f"{FAMILY_KEY}-02", 0, probability=None, match_weight=None, held=True)
    record = dataclasses.replace(_record(), decisions=(later, first))
    back = changelog.decode(changelog.encode(record), 3)
    assert back == record and back.decisions == (later, first)


def test_a_positions_record_round_trips_and_is_not_a_family() -> None:
    positions = changelog.PositionsRecord({("changes", 1): 7, ("bpjs", 0): 3})
    value = changelog.encode_positions(positions)
    assert value == b'{"change_positions":[["bpjs",0,3],["changes",1,7]],"v":4}'
    assert changelog.decode_any(value, 0) == positions
    with pytest.raises(ValueError, match="positions"):
        changelog.decode(value, 0)


def test_a_decision_positions_record_round_trips_and_is_neither_a_family_nor_change_positions() -> None:
    decided = changelog.DecisionPositionsRecord({("decisions", 2): 9, ("decisions", 0): 4})
    value = changelog.encode_decision_positions(decided)
    assert value == b'{"decision_positions":[["decisions",0,4],["decisions",2,9]],"v":4}'
    assert changelog.decode_any(value, 0) == decided
    with pytest.raises(ValueError, match="positions"):
        changelog.decode(value, 0)
    # read by a linker of layout 3 (READABLE {1, 2, 3}): refused by its version, not misread as a family
    assert json.loads(value)["v"] not in {1, 2, 3}


def test_a_family_record_carries_the_stored_ids_and_the_new_ones() -> None:
    update = StoreUpdate()
    update.families[FAMILY_KEY] = FamilyState(2, "S-r2", (1, 2))
    update.minted[f"{FAMILY_KEY}-02"] = "P-new"
    update.members[f"{FAMILY_KEY}-01"] = _member(FAMILY_KEY, 1)
    update.members[f"{FAMILY_KEY}-02"] = _member(FAMILY_KEY, 2)
    stored = {FAMILY_KEY: {f"{FAMILY_KEY}-01": "P-old", f"{FAMILY_KEY}-03": "P-dropped"}}
    asked: list[list[str]] = []

    def stored_minted(keys: Any) -> dict[str, dict[str, str]]:
        asked.append(list(keys))
        return stored

    [record] = changelog.family_records(update, stored_minted)
    assert asked == [[FAMILY_KEY]]
    assert record.minted == {f"{FAMILY_KEY}-01": "P-old", f"{FAMILY_KEY}-02": "P-new", f"{FAMILY_KEY}-03": "P-dropped"}
    assert [m.member_key for m in record.members] == [f"{FAMILY_KEY}-01", f"{FAMILY_KEY}-02"]
    assert record.state == FamilyState(2, "S-r2", (1, 2))


class FakeReader:
    """A changelog partition per partition number: a list of values; records every read."""

    def __init__(self) -> None:
        self.log: dict[int, list[bytes]] = {}
        self.reads: list[tuple[int, int]] = []
        self.chunk_sizes: list[int] = []

    def append(self, partition: int, record: FamilyRecord) -> int:
        values = self.log.setdefault(partition, [])
        values.append(changelog.encode(record))
        return len(values) - 1

    def append_value(self, partition: int, value: bytes) -> int:
        values = self.log.setdefault(partition, [])
        values.append(value)
        return len(values) - 1

    def read(self, partition: int, from_offset: int) -> tuple[list[bytes], int]:
        self.reads.append((partition, from_offset))
        values = self.log.get(partition, [])
        return values[from_offset:], len(values)

    def chunks(self, partition: int, from_offset: int, max_records: int) -> Iterator[tuple[list[bytes], int]]:
        self.reads.append((partition, from_offset))
        values = self.log.get(partition, [])
        end = len(values)
        step = max_records or max(end - from_offset, 1)
        for at in range(from_offset, end, step):
            chunk = values[at : min(at + step, end)]
            self.chunk_sizes.append(len(chunk))
            yield chunk, at + len(chunk)


def _state_of(store: LinkStore, family_key: str) -> tuple[Any, ...]:
    members = store.find_family_members([family_key], partition=3)
    return (store.families([family_key]), store.family_minted([family_key]), members)


def test_restore_into_an_empty_file_reads_from_the_start_and_keeps_the_latest_of_each_family(tmp_path: Path) -> None:
    reader = FakeReader()
    reader.append(3, _record(revision=1, serials=(1, 2, 3)))
    reader.append(3, _record(OTHER_FAMILY, revision=1, serials=(1,)))
    reader.append(3, _record(revision=2, serials=(1, 2)))
    store = LinkStore(tmp_path / "p3.duckdb")
    assert changelog.restore(store, 3, reader) == 3  # records read
    assert reader.reads == [(3, 0)]
    latest = _record(revision=2, serials=(1, 2))
    assert store.families([FAMILY_KEY]) == {FAMILY_KEY: latest.state}
    assert store.family_minted([FAMILY_KEY]) == {FAMILY_KEY: dict(latest.minted)}
    assert store.find_family_members([FAMILY_KEY], partition=3) == list(latest.members)
    assert store.changelog_position(3) == 3
    store.close()
    # The file remembers the offset it reflects: a reopened file reads only what came after it.
    reopened = LinkStore(tmp_path / "p3.duckdb")
    assert reopened.changelog_position(3) == 3
    assert changelog.restore(reopened, 3, reader) == 0
    assert reader.reads[-1] == (3, 3)
    reopened.close()


def test_restore_of_a_file_behind_the_log_replaces_its_families_and_drops_members_the_record_lacks(
    tmp_path: Path,
) -> None:
    reader = FakeReader()
    store = LinkStore(tmp_path / "p3.duckdb")
    first = _record(revision=1, serials=(1, 2, 3))
    store.apply(changelog.records_update([first]), {3: reader.append(3, first) + 1})
    # Another instance owned the partition meanwhile and wrote revision 2 (member 3 dropped).
    second = _record(revision=2, serials=(1, 2))
    reader.append(3, second)
    assert changelog.restore(store, 3, reader) == 1
    assert reader.reads == [(3, 1)]
    assert _state_of(store, FAMILY_KEY) == (
        {FAMILY_KEY: second.state},
        {FAMILY_KEY: dict(second.minted) | dict(first.minted)},
        list(second.members),
    )
    assert store.changelog_position(3) == 2
    store.close()


def test_the_partitioned_store_restores_a_partition_when_it_opens_its_file(tmp_path: Path) -> None:
    reader = FakeReader()
    reader.append(3, _record())
    store = PartitionedLinkStore(tmp_path, changelog=reader)
    view = store.batch({FAMILY_KEY: 3})
    assert view.families([FAMILY_KEY]) == {FAMILY_KEY: _record().state}
    assert reader.reads == [(3, 0)]  # only the partition a batch needed, once while open
    assert view.families([FAMILY_KEY]) == {FAMILY_KEY: _record().state}
    assert reader.reads == [(3, 0)]
    store.release([3])
    reader.append(3, _record(revision=3, serials=(1,)))  # written elsewhere while not owned here
    assert store.batch({FAMILY_KEY: 3}).families([FAMILY_KEY]) == {FAMILY_KEY: _record(revision=3, serials=(1,)).state}
    assert reader.reads == [(3, 0), (3, 1)]
    store.close()


SETTINGS = LinkerSettings(
    members_topic="m", families_topic="f", review_topic="r", dlq_topic="dlq", changelog_topic="cl"
)


def _handler(store: PartitionedLinkStore) -> tuple[SubmissionHandler, list[OutboundRecord], list[asyncio.Future[Any]]]:
    fake = FakeMemberLinker.of([FakeMasterPerson(nik_for(2), "Ahmad Fauzi", "3603121705150003")])
    pipeline = SubmissionLinker(fake, PersonIds(b"k"), OutputTopics("m", "f", "r"))
    handler = SubmissionHandler(SETTINGS, pipeline, store)
    sent: list[OutboundRecord] = []
    acks: list[asyncio.Future[Any]] = []
    offsets: dict[tuple[str, int | None], int] = {}

    async def send(rec: OutboundRecord) -> asyncio.Future[Any]:
        sent.append(rec)
        where = (rec.topic, rec.partition)
        offset = offsets[where] = offsets.get(where, 40) + 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.meta = SimpleNamespace(partition=rec.partition, offset=offset)  # type: ignore[attr-defined]
        acks.append(fut)
        return fut

    handler.bind_sender(send)
    return handler, sent, acks


def _submission(revision: int, partition: int, offset: int) -> FakeEvent:
    members = [member_payload(1, "Ahmad Fauzi", nik_for(2)), member_payload(2, "Siti", None, relationship=2)]
    value = json.dumps(submission_payload(members[: 3 - revision], revision=revision)).encode()
    return FakeEvent(FakeMessage("subs", partition, offset, 1_700_000_000.0, FAMILY_KEY.encode(), value))


async def _run(handler: SubmissionHandler, acks: list[asyncio.Future[Any]], events: list[FakeEvent]) -> list[str]:
    """One batch; its acknowledgements are held back until every record was sent, then given."""
    order: list[str] = []
    task = asyncio.ensure_future(handler.handle_pipelined(events, on_stored=lambda _: order.append("stored")))
    while not task.done() and not acks:  # the sends of a batch follow each other without a pause
        await asyncio.sleep(0)
    for _ in range(50):  # let the handler run on: nothing may be stored while acknowledgements are missing
        await asyncio.sleep(0)
    order.append("acked")
    for fut in acks:
        fut.set_result(fut.meta)  # type: ignore[attr-defined]
    await task
    await handler.settle()
    acks.clear()
    return order


def test_the_handler_sends_each_changed_family_to_its_partitions_changelog_before_the_store_write(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        store = PartitionedLinkStore(tmp_path / "a", changelog=FakeReader())
        handler, sent, acks = _handler(store)
        assert await _run(handler, acks, [_submission(1, 2, 0)]) == ["acked", "stored"]
        logged = [r for r in sent if r.topic == "cl"]
        assert [(r.key, r.partition) for r in logged] == [(FAMILY_KEY.encode(), 2)]
        record = changelog.decode(logged[0].value or b"", 2)
        assert record.state.revision == 1 and record.state.serials == (1, 2)
        file = store.file(2)
        assert file.changelog_position(2) == 42  # the acknowledged offset 41, plus one
        assert _state_from(record) == _state_of_file(file)
        # Revision 2 drops member 2: the record is the family's whole state (member 2's id stays).
        assert await _run(handler, acks, [_submission(2, 2, 1)]) == ["acked", "stored"]
        second = changelog.decode([r for r in sent if r.topic == "cl"][-1].value or b"", 2)
        assert second.state.serials == (1,) and [m.member_key for m in second.members] == [f"{FAMILY_KEY}-01"]
        assert second.minted == record.minted and f"{FAMILY_KEY}-02" in second.minted
        assert file.changelog_position(2) == 43
        # A new instance with an empty folder restores exactly this state from those records.
        reader = FakeReader()
        reader.log[2] = [r.value or b"" for r in sent if r.topic == "cl"]
        fresh = PartitionedLinkStore(tmp_path / "b", changelog=reader)
        assert _state_of_file(fresh.file(2)) == _state_of_file(file)
        store.close()
        fresh.close()

    asyncio.run(scenario())


def _state_from(record: FamilyRecord) -> tuple[Any, ...]:
    return ({FAMILY_KEY: record.state}, {FAMILY_KEY: dict(record.minted)}, list(record.members))


def _state_of_file(store: LinkStore) -> tuple[Any, ...]:
    members = store.find_family_members([FAMILY_KEY], partition=2)
    return (store.families([FAMILY_KEY]), store.family_minted([FAMILY_KEY]), members)


def test_restore_in_small_chunks_keeps_the_latest_state_of_a_family_across_chunks(tmp_path: Path) -> None:
    reader = FakeReader()
    ids = _record(revision=1, serials=(1, 2, 3)).minted  # an id once minted stays in every later record
    reader.append(3, _record(revision=1, serials=(1, 2, 3)))
    reader.append(3, _record(OTHER_FAMILY, revision=1, serials=(1,)))
    reader.append(3, dataclasses.replace(_record(revision=2, serials=(1, 2)), minted=ids))  # in the second chunk
    reader.append_value(3, changelog.encode_positions(changelog.PositionsRecord({("pop", 0): 4})))
    reader.append(3, dataclasses.replace(_record(revision=3, serials=(1,)), minted=ids))  # and in the third
    store = LinkStore(tmp_path / "p3.duckdb")
    assert changelog.restore(store, 3, reader, chunk_records=2) == 5
    assert reader.chunk_sizes == [2, 2, 1]  # never more than 2 records held
    whole = LinkStore(tmp_path / "whole.duckdb")
    assert changelog.restore(whole, 3, reader, chunk_records=100) == 5
    assert reader.chunk_sizes[3:] == [5]
    for key in (FAMILY_KEY, OTHER_FAMILY):
        assert _state_of(store, key) == _state_of(whole, key)
    assert store.families([FAMILY_KEY])[FAMILY_KEY].revision == 3
    assert [m.member_key for m in store.find_family_members([FAMILY_KEY], partition=3)] == [f"{FAMILY_KEY}-01"]
    assert store.change_positions() == whole.change_positions() == {("pop", 0): 4}
    assert store.changelog_position(3) == whole.changelog_position(3) == 5
    store.close()
    whole.close()


def test_a_restore_stopped_between_chunks_leaves_a_consistent_file_that_the_next_one_continues(tmp_path: Path) -> None:
    reader = FakeReader()
    for revision in (1, 2, 3):
        reader.append(3, _record(revision=revision, serials=(1,)))
    store = LinkStore(tmp_path / "p3.duckdb")
    chunks: list[int] = []
    assert changelog.restore(store, 3, reader, chunk_records=1, stop=lambda: len(reader.chunk_sizes) >= 2) == 2
    chunks.extend(reader.chunk_sizes)
    assert store.changelog_position(3) == 2 and store.families([FAMILY_KEY])[FAMILY_KEY].revision == 2
    assert changelog.restore(store, 3, reader, chunk_records=1) == 1
    assert reader.reads[-1] == (3, 2) and store.families([FAMILY_KEY])[FAMILY_KEY].revision == 3
    store.close()
