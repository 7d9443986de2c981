"""Per-file decision positions, without a broker: which review decisions a link-store file's state
reflects, moved only by batches applied to that file, carried on the changelog and restored with the
file; a file BEHIND this instance's decisions reader re-reads exactly the range it missed and applies
its members' decisions once; a file AHEAD needs nothing (the reader's later copy is a duplicate)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from contracts.review_decisions import REVIEW_DECISION_ADAPTER, decision_id_of
from services.kafka.record import KafkaRecord
from services.linker import changelog
from services.linker.changelog import ChangelogSink, ChangelogWrite, SendWriter
from services.linker.pipeline import OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.linker.updates.applier import UpdateTopics
from services.linker.updates.decision_wiring import DecisionHandler, DecisionPositions
from services.linker.updates.positions import furthest, missed
from tests.support.acking import AckingProducer, LogReader
from tests.support.linker import FakeMasterPerson, FakeMemberLinker
from tests.support.linking import link_batch
from tests.unit.test_decisions_changelog import AHMAD, FAM, IDS, KEY, KK, RIZKY, _new_person, _submission

OTHER_KEY = "3603010001000100009009-01"  # a member of a family no file here holds


def test_the_missed_range_is_exactly_from_the_files_position_to_the_readers() -> None:
    file = {("dec", 0): 3, ("dec", 1): 9, ("dec", 3): 2}
    reader = {("dec", 0): 7, ("dec", 1): 9, ("dec", 2): 4, ("dec", 3): 1}
    # partition 1 in sync, 3 ahead (nothing), 2 never seen by the file (from 0)
    assert missed(file, reader) == {("dec", 0): (3, 7), ("dec", 2): (0, 4)}
    assert missed(reader, reader) == {} and missed(file, {}) == {}
    assert furthest(file, reader) == {("dec", 0): 7, ("dec", 1): 9, ("dec", 2): 4, ("dec", 3): 2}


def _record(offset: int, key: str = KEY) -> KafkaRecord:
    base = _new_person()
    if key == KEY:
        return KafkaRecord("dec", 0, offset, base.key, base.value, base.timestamp_ms)
    decision = REVIEW_DECISION_ADAPTER.validate_json(base.value or b"")
    task = f"{key}/r1"
    other = decision.model_copy(update={"member_key": key, "task_id": task, "decision_id": decision_id_of(task, 0)})
    return KafkaRecord("dec", 0, offset, key.encode(), other.model_dump_json().encode(), base.timestamp_ms)


class FakeSource:
    """The decisions topic as a list of records; notes each range asked for."""

    def __init__(self, records: Sequence[KafkaRecord]) -> None:
        self.records = list(records)
        self.asked: list[dict[tuple[str, int], tuple[int, int]]] = []

    def read(self, ranges: Mapping[tuple[str, int], tuple[int, int]]) -> list[KafkaRecord]:
        self.asked.append(dict(ranges))
        return [
            r
            for r in self.records
            if (r.topic, r.partition) in ranges
            and ranges[(r.topic, r.partition)][0] <= r.offset
            and r.offset < ranges[(r.topic, r.partition)][1]
        ]


class Setup:
    def __init__(self, tmp_path: Path, reader_at: Mapping[tuple[str, int], int] | None = None) -> None:
        # Rizky's NIK is in the master under another name: the fake puts him in review.
        self.fake = FakeMemberLinker.of(
            [FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK), FakeMasterPerson(RIZKY, "Budi", KK)]
        )
        pipeline = SubmissionLinker(self.fake, IDS, OutputTopics("m", "f", "r"))
        self.store = LinkStore(tmp_path / "links-p0.duckdb")
        linked = link_batch(pipeline, self.store, [_submission()])
        self.producer = AckingProducer()
        self.sink = ChangelogSink(SendWriter("cl", self.producer))
        [first] = changelog.family_records(linked.update, self.store.family_minted, self.store.family_decisions)
        asyncio.run(self.sink.write({0: [first]}))
        self.store.apply(linked.update, {0: 1})
        self.positions = DecisionPositions(tmp_path / "review-decisions.duckdb")
        if reader_at:
            self.positions.save(reader_at)
        self.tmp = tmp_path

    def handler(
        self, source: FakeSource | None, files: Mapping[int, LinkStore] | None = None, **kw: Any
    ) -> DecisionHandler:
        chosen = {0: self.store} if files is None else files
        return DecisionHandler(
            self.fake,
            lambda: chosen,
            lambda: False,
            IDS,
            UpdateTopics("m", "r", "u", "f"),
            "dlq",
            self.positions,
            self.producer,
            max_payload_bytes=100_000,
            changelog=kw.pop("changelog", self.sink),
            source=source,
            **kw,
        )

    def events(self) -> list[OutboundRecord]:
        return [r for r in self.producer.sent if r.topic == "u"]


def test_a_file_behind_the_reader_rereads_exactly_its_missed_range_and_applies_its_members_decisions_once(
    tmp_path: Path,
) -> None:
    # This instance's reader passed offsets 0..4 while another instance owned the file: it skipped them.
    s = Setup(tmp_path, {("dec", 0): 5})
    source = FakeSource([_record(0, OTHER_KEY), _record(1, OTHER_KEY), _record(2), _record(3, OTHER_KEY)])
    handler = s.handler(source)
    assert s.store.decision_positions() == {} and not handler.ready([0])
    assert asyncio.run(handler.catch_up()) == 1
    assert source.asked == [{("dec", 0): (0, 5)}]
    assert [d.decision_id for d in s.store.decisions_of(KEY)] == [_new_person_id()]
    assert next(m for m in s.store.find_family_members([FAM]) if m.member_key == KEY).decision == "not_linked"
    assert s.store.decision_positions() == {("dec", 0): 5} and handler.ready([0])
    # the other members' decisions are left to their owners (not even judged here: no dead letters)
    assert handler.totals["caught_up"] == 1 and handler.totals["elsewhere"] == 0 and not handler.dead_letters
    events = len(s.events())
    assert events > 0
    # on the changelog: the family's new state, then the file's decision positions (one write)
    logged = [r for r in s.producer.sent if r.topic == "cl"]
    assert [r.key for r in logged] == [FAM.encode(), FAM.encode(), b"~decision-positions"]
    assert changelog.decode_any(logged[-1].value or b"", 0) == changelog.DecisionPositionsRecord({("dec", 0): 5})
    # caught up: nothing is read again, and the reader's own copy of the decision (a replay) is a duplicate
    assert asyncio.run(handler.catch_up()) == 0 and len(source.asked) == 1
    result = asyncio.run(handler.handle([_record(5)]))
    assert (result.applied, result.duplicates) == (0, 1) and len(source.asked) == 1
    assert len(s.events()) == events
    assert s.store.decision_positions() == {("dec", 0): 6}
    # A new owner with an empty disk restores the file with its positions: nothing is re-read by it.
    fresh = LinkStore(tmp_path / "fresh.duckdb")
    changelog.restore(fresh, 0, LogReader(s.producer, "cl"))
    assert fresh.decision_positions() == {("dec", 0): 6}
    assert fresh.decisions_of(KEY) == s.store.decisions_of(KEY)
    fresh.close()


def _new_person_id() -> str:
    return REVIEW_DECISION_ADAPTER.validate_json(_new_person().value or b"").decision_id


def test_without_the_reread_the_skipped_decision_is_never_applied(tmp_path: Path) -> None:
    # The gap the positions close: the same file and reader, no source to re-read from.
    s = Setup(tmp_path, {("dec", 0): 5})
    handler = s.handler(None)
    asyncio.run(handler.handle([_record(5, OTHER_KEY)]))
    assert s.store.decisions_of(KEY) == []


def test_a_file_ahead_of_the_reader_reads_nothing_and_the_readers_copy_is_a_duplicate(tmp_path: Path) -> None:
    s = Setup(tmp_path)  # this instance's reader starts at the beginning
    first = s.handler(FakeSource([]))
    asyncio.run(first.handle([_record(0), _record(1, OTHER_KEY), _record(2, OTHER_KEY)]))
    assert s.store.decision_positions() == {("dec", 0): 3}
    # Another instance (its reader at offset 1) opens the same file: the file is ahead there.
    positions = DecisionPositions(tmp_path / "other" / "review-decisions.duckdb")
    positions.save({("dec", 0): 1})
    s.positions = positions
    source = FakeSource([_record(0)])
    other = s.handler(source)
    assert asyncio.run(other.catch_up()) == 0 and source.asked == []
    events = len(s.events())
    result = asyncio.run(other.handle([_record(1, OTHER_KEY)]))
    assert result.duplicates == 0 and result.elsewhere == 1
    assert s.store.decision_positions() == {("dec", 0): 3}  # never moved back
    # (a replay of the first decision by another reader position is dropped by id)
    assert asyncio.run(other.handle([_record(0)])).duplicates == 1
    assert len(s.events()) == events


def test_positions_move_only_with_batches_applied_to_the_file(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    elsewhere = LinkStore(tmp_path / "links-p1.duckdb")  # a file of a partition this instance does not own
    handler = s.handler(FakeSource([]))
    asyncio.run(handler.handle([_record(0, OTHER_KEY)]))
    assert s.store.decision_positions() == {("dec", 0): 1} and elsewhere.decision_positions() == {}

    async def failing(rec: OutboundRecord) -> Any:
        raise RuntimeError("broker down")

    broken = DecisionHandler(
        s.fake,
        lambda: {0: s.store},
        lambda: False,
        IDS,
        UpdateTopics("m", "r", "u", "f"),
        "dlq",
        s.positions,
        failing,
        max_payload_bytes=100_000,
        changelog=s.sink,
    )
    with pytest.raises(RuntimeError):
        asyncio.run(broken.handle([_record(1)]))  # its outputs were never acknowledged
    assert s.store.decision_positions() == {("dec", 0): 1} and s.store.decisions_of(KEY) == []

    class Fenced:
        async def write(self, records: Mapping[int, Sequence[tuple[bytes, bytes]]]) -> ChangelogWrite:
            return ChangelogWrite({}, frozenset(records))

    fenced = s.handler(FakeSource([]), changelog=ChangelogSink(Fenced()))
    asyncio.run(fenced.handle([_record(1)]))  # another instance took partition 0 over
    assert s.store.decision_positions() == {("dec", 0): 1} and s.store.decisions_of(KEY) == []
    assert fenced.next_positions == {("dec", 0): 2}  # this reader moves on; the file does not
    elsewhere.close()
