"""Wiring clerical review decisions into the linker's faust app: a per-instance reader and its handler.

Like the change reader (`reader.py`), every instance reads every partition of
`linkage.review.decisions.v1` outside the consumer group (decisions are keyed by member key, the link
store is split by the submissions partition of the family key, so the two partitionings differ). Each
batch waits until the submissions agent has handled its partitions up to their current end (a replay
links the families before their decisions), then runs under the engine lock: the decisions of members
held by the files this instance owns are applied (`decisions.py`), every output is produced and
acknowledged, then (with the link-state changelog) each decided family's new state record is sent to
its partition's changelog and acknowledged (services/linker/changelog.py), then the applied decisions
and member states are written to their link-store files with the changelog offsets, and last the
reader's positions to `<state_dir>/review-decisions.duckdb`. A crash in between re-reads the
batch; decisions already in a file are dropped by id, so nothing is applied twice.

A decision for a member that no owned file holds is dead-lettered (`unknown_member`) when this instance
owns every submissions partition; otherwise another instance owns the member and applies it.

Each link-store file records which decisions its state reflects (`LinkStore.decision_positions`: per
decisions partition, the next offset; every decision before it of the file's members is applied),
moved with every batch this instance applies to it and carried on the changelog (a
`~decision-positions` record per file, in the batch's transaction), so a restored file has them. A
file BEHIND this instance's reader (another instance owned it while this reader skipped its members'
decisions, and that owner may have died before applying them) is caught up first (`catch_up`): the
decisions between its positions and the reader's are read again (`DecisionSource`) and those of its
members applied to it alone, before the partition's next submissions batch or decision batch, and when
the reader is idle. A file AHEAD of the reader (restored on an instance whose reader starts further
back) needs nothing: the reader reaches those decisions, and the file's own are dropped by id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import faust
from faust.types import TP

from integration.clerical import AppliedDecision, SecondReview
from integration.ids import PersonIds
from services.kafka.clients import TopicPartition, reader
from services.kafka.record import KafkaRecord
from services.linker.changelog import (
    ChangelogSink,
    ChangelogWrite,
    ChangelogWriter,
    FamilyRecord,
    SendWriter,
    file_records,
)
from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.pipeline import OutboundRecord, Send
from services.linker.progress import SubmissionsProgress
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore, save_positions
from services.linker.updates.applier import LinkingMaster, UpdateTopics
from services.linker.updates.decisions import DecisionApplier, DecisionResult
from services.linker.updates.handler import StoreMemberIndex, by_partition
from services.linker.updates.positions import Positions, advanced, furthest, missed
from services.linker.updates.reader import ChangeReader, read_or_crash

log = logging.getLogger("regsosek.linker.decisions")
_FAMILY_KEY_LENGTH = 22

#: (topic, partition) -> [start, end) offsets to read again.
Ranges = Mapping[tuple[str, int], tuple[int, int]]


class DecisionSource(Protocol):
    """Reads decision records again (a file's missed decisions; the Kafka adapter: `KafkaDecisionSource`)."""

    def read(self, ranges: Ranges) -> list[KafkaRecord]:
        """The records of each (topic, partition) from start to end (exclusive), ordered by topic,
        partition and offset (records retention removed are skipped)."""
        ...


class KafkaDecisionSource:
    """`DecisionSource` over the broker: a consumer outside any group, assigned and sought by hand."""

    def __init__(self, bootstrap: str, *, security: Mapping[str, Any] | None = None, timeout_s: float = 120.0) -> None:
        self._bootstrap, self._security, self._timeout_s = bootstrap, dict(security or {}), timeout_s

    def read(self, ranges: Ranges) -> list[KafkaRecord]:
        """Read every range to its end (bounded by `timeout_s`)."""
        if not ranges:
            return []
        consumer = reader(
            self._bootstrap,
            client_id="regsosek-linker-decision-reread",
            auto_offset_reset="earliest",  # offsets retention removed: from the first one kept
            **self._security,
        )
        try:
            ends = {TopicPartition(t, p): end for (t, p), (_, end) in ranges.items()}
            consumer.assign(list(ends))
            for (t, p), (start, _) in ranges.items():
                consumer.seek(TopicPartition(t, p), start)
            out: list[KafkaRecord] = []
            open_ = set(ends)
            deadline = time.monotonic() + self._timeout_s
            while open_:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"re-reading review decisions did not finish within {self._timeout_s:.0f} s")
                for tp, batch in consumer.poll(timeout_ms=500).items():
                    out.extend(KafkaRecord.of(r) for r in batch if r.offset < ends[tp])
                for tp in list(open_):
                    if consumer.position(tp) >= ends[tp]:
                        open_.discard(tp)
                        consumer.pause(tp)
            return sorted(out, key=lambda r: (r.topic, r.partition, r.offset))
        finally:
            consumer.close()


class DecisionPositions:
    """The reader's next offset per decisions partition (a small DuckDB file of this instance)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(path))
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS positions (topic VARCHAR NOT NULL, partition INTEGER NOT NULL, "
            "next_offset BIGINT NOT NULL, PRIMARY KEY (topic, partition))"
        )

    def read(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> next offset."""
        rows = self._con.execute("SELECT topic, partition, next_offset FROM positions").fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def save(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Upsert the positions."""
        save_positions(self._con, "positions", positions)


class DecisionHandler:
    """Applies one batch of decision records: apply, produce, await every ack, then store."""

    def __init__(
        self,
        master: LinkingMaster,
        files: Callable[[], Mapping[int, LinkStore]],
        owns_all: Callable[[], bool],
        ids: PersonIds,
        topics: UpdateTopics,
        dlq_topic: str,
        positions: DecisionPositions,
        send: Send,
        *,
        max_payload_bytes: int,
        second_review: SecondReview | None = None,
        changelog: ChangelogSink | None = None,
        source: DecisionSource | None = None,
    ) -> None:
        self._master, self._files, self._owns_all = master, files, owns_all
        # Where a file's missed decisions are read again (None: files behind the reader are not caught up).
        self._source = source
        self._file_positions: dict[int, dict[tuple[str, int], int]] = {}  # of the files in use, cached
        self._changelog = changelog  # the link-state changelog: the decided families' new states
        self._ids, self._topics, self._dlq = ids, topics, dlq_topic
        self._positions, self._send, self._max_bytes = positions, send, max_payload_bytes
        self.next_positions = positions.read()
        self._second = second_review
        self.totals: dict[str, int] = {
            "applied": 0,
            "duplicates": 0,
            "elsewhere": 0,
            "held": 0,
            "caught_up": 0,  # decisions applied by catching files up (`catch_up`)
        }
        self.dead_letters: dict[str, int] = {}

    # --- files behind this instance's reader -----------------------------------------------------

    def file_positions(self, partition: int) -> dict[tuple[str, int], int] | None:
        """A file's decision positions as last read or written (None: not read since it was acquired)."""
        known = self._file_positions.get(partition)
        return None if known is None else dict(known)

    def ready(self, partitions: Collection[int]) -> bool:
        """True when every given file is known not to be behind the reader (no I/O)."""
        for p in partitions:
            known = self._file_positions.get(p)
            if known is None or (self._source is not None and missed(known, self.next_positions)):
                return False
        return True

    def forget(self, partitions: Collection[int]) -> None:
        """Files released (partition revoked or fenced): their positions are re-read when acquired again."""
        for p in partitions:
            self._file_positions.pop(p, None)

    async def catch_up(self, partitions: Collection[int] | None = None) -> int:
        """Apply to each owned file (all, or the given ones) the decisions this instance's reader has
        passed and the file has not seen; returns how many were applied. Call under the engine lock."""
        files = await asyncio.to_thread(self._files)  # may open files (restore them from the changelog)
        applied = 0
        for p, file in sorted(files.items()):
            if partitions is not None and p not in partitions:
                continue
            if p not in self._file_positions:
                self._file_positions[p] = await asyncio.to_thread(file.decision_positions)
            ranges = missed(self._file_positions[p], self.next_positions)
            if ranges and self._source is not None:
                applied += await self._reread(p, file, ranges)
        return applied

    async def _reread(self, partition: int, file: LinkStore, ranges: Ranges) -> int:
        started = time.perf_counter()
        source = self._source
        assert source is not None
        target = furthest(self._file_positions[partition], self.next_positions)
        records = await asyncio.to_thread(source.read, ranges)
        # Only this file's members: the others' decisions were applied (or dead-lettered) by their owners.
        mine = [r for r in records if r.key is not None and file.families([_family_of(r.key)])]
        files = {partition: file}
        result = await asyncio.to_thread(self._applier(files, elsewhere=True).process, mine)
        await self._produce_and_wait(result.records)
        logged = await self._log_states(files, result, {partition: target})
        if partition in logged.fenced:  # another instance owns it now (the app released it)
            return 0
        await asyncio.to_thread(self._save_files, files, result, {partition: target}, logged.after)
        self._count(result, caught_up=True)
        log.info(
            "review decisions: link-store file p%d caught up with this instance's decisions reader: "
            "%d decision records re-read (positions %s), %d of its members, %d applied, %d duplicates, "
            "%d dead-lettered, %d update events in %.3f s",
            partition,
            len(records),
            ", ".join(f"{t}[{p}] {a}..{b}" for (t, p), (a, b) in sorted(ranges.items())),
            len(mine),
            result.applied,
            result.duplicates,
            sum(result.dead.values()),
            result.events,
            time.perf_counter() - started,
        )
        return result.applied

    # --- a batch of decision records -------------------------------------------------------------

    def _applier(self, files: Mapping[int, LinkStore], *, elsewhere: bool) -> DecisionApplier:
        def decisions_of(member_key: str) -> list[AppliedDecision]:
            for file in files.values():
                found = file.decisions_of(member_key)
                if found:
                    return found
            return []

        return DecisionApplier(
            self._master,
            StoreMemberIndex(lambda: files),
            decisions_of,
            self._ids,
            self._topics,
            self._dlq,
            max_bytes=self._max_bytes,
            unknown_is_elsewhere=elsewhere,
            second_review=self._second,
        )

    async def handle(self, records: Sequence[KafkaRecord]) -> DecisionResult:
        """Call under the engine lock."""
        started = time.perf_counter()
        await self.catch_up()  # files behind the reader first: the batch's decisions follow theirs
        files = await asyncio.to_thread(self._files)
        owns_all = self._owns_all()
        result = await asyncio.to_thread(self._applier(files, elsewhere=not owns_all).process, records)
        await self._produce_and_wait(result.records)
        target = advanced(self.next_positions, records)
        # Every owned file now reflects the batch (a file ahead of the reader keeps its higher positions).
        at = {p: furthest(self._file_positions.get(p, {}), target) for p in files}
        logged = await self._log_states(files, result, at)
        # A partition fenced on the changelog is another instance's now: its file is not written (the
        # new owner applies these decisions from its own reader); this reader's positions still move.
        kept = {p: f for p, f in files.items() if p not in logged.fenced}
        await asyncio.to_thread(self._save, kept, result, at, logged.after, target)
        self.next_positions = target
        self._count(result)
        log.info(
            "review decisions: %d records, %d applied, %d duplicates, %d for other instances, %d dead-lettered, "
            "%d update events, %d outputs in %.3f s",
            len(records),
            result.applied,
            result.duplicates,
            result.elsewhere,
            sum(result.dead.values()),
            result.events,
            len(result.records),
            time.perf_counter() - started,
        )
        return result

    def _count(self, result: DecisionResult, *, caught_up: bool = False) -> None:
        for name, n in (
            ("applied", result.applied),
            ("duplicates", result.duplicates),
            ("elsewhere", result.elsewhere),
            ("held", result.held),
        ):
            self.totals[name] += n
        if caught_up:
            self.totals["caught_up"] += result.applied
        for reason, n in result.dead.items():
            self.dead_letters[reason] = self.dead_letters.get(reason, 0) + n

    async def _log_states(
        self, files: Mapping[int, LinkStore], result: DecisionResult, at: Mapping[int, Positions]
    ) -> ChangelogWrite:
        """With the changelog: each decided family's new state (members, decision log) on its partition's
        changelog, then each file's decision positions `at`, committed (one transaction per partition);
        returns the changelog offsets reached (partition -> next offset) and the partitions fenced."""
        if self._changelog is None or not files:
            return ChangelogWrite({})
        states = by_partition(result.states.values())

        def records() -> dict[int, list[FamilyRecord]]:
            out: dict[int, list[FamilyRecord]] = {}
            for p, file in sorted(files.items()):
                entries = [e for e in result.entries if result.partitions.get(e.member_key) == p]
                families = {e.member_key[:22] for e in entries} | {s.family_key for s in states.get(p, {}).values()}
                if families:
                    out[p] = file_records(file, p, families, states.get(p, {}), entries)
            return out

        families = await asyncio.to_thread(records)
        return await self._changelog.write(families, decision_positions={p: at[p] for p in files if p in at})

    def _save(
        self,
        files: Mapping[int, LinkStore],
        result: DecisionResult,
        at: Mapping[int, Positions],
        logged: Mapping[int, int],
        target: Mapping[tuple[str, int], int],
    ) -> None:
        self._save_files(files, result, at, logged)
        self._positions.save(target)

    def _save_files(
        self,
        files: Mapping[int, LinkStore],
        result: DecisionResult,
        at: Mapping[int, Positions],
        logged: Mapping[int, int],
    ) -> None:
        """Each file's applied decisions, member states, decision positions and changelog offset (one
        transaction per file)."""
        states = by_partition(result.states.values())
        for p, file in sorted(files.items()):
            entries = [e for e in result.entries if result.partitions.get(e.member_key) == p]
            file.apply_decisions(
                entries, states.get(p, {}), {p: logged[p]} if p in logged else None, decision_positions=at.get(p)
            )
            if p in at:
                self._file_positions[p] = furthest(self._file_positions.get(p, {}), at[p])

    async def _produce_and_wait(self, records: Sequence[OutboundRecord]) -> None:
        pending = [await self._send(r) for r in records]
        if pending:
            await asyncio.gather(*pending)


def install_decisions(
    app: faust.App,
    settings: LinkerSettings,
    *,
    linker: Any,
    store: PartitionedLinkStore,
    ids: PersonIds,
    send: Send,
    lock: Any,
    progress: SubmissionsProgress,
    changelog_writer: ChangelogWriter | None = None,
    excluded: Callable[[], Collection[int]] = frozenset,
    source: DecisionSource | None = None,
) -> ReviewDecisions:
    """Add the decisions reader (a task) to `app`; its batches take turns with the others on `lock`.

    `changelog_writer`: the fenced changelog writer (by default `send`, unfenced); `excluded()`: owned
    partitions this instance must not touch (fenced on the changelog: another instance owns them now);
    `source`: where files behind the reader re-read their missed decisions (by default the broker)."""
    owned: set[int] = set()
    assigned = asyncio.Event()
    partitions_total: list[int] = []

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def note_assignment(sender: Any, assigned_tps: set[TP], **_: Any) -> None:
        owned.clear()
        owned.update(tp.partition for tp in assigned_tps if tp.topic == settings.submissions_topic)
        assigned.set()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def note_revocation(sender: Any, revoked: set[TP], **_: Any) -> None:
        # (the app's revocation hook forgets the files' cached positions, under the engine lock)
        owned.difference_update(tp.partition for tp in revoked if tp.topic == settings.submissions_topic)

    def files() -> Mapping[int, LinkStore]:
        return {p: store.file(p) for p in sorted(set(owned) - set(excluded()))}

    def owns_all() -> bool:
        return bool(partitions_total) and len(set(owned) - set(excluded())) >= partitions_total[0]

    topics = UpdateTopics(
        settings.members_topic, settings.review_topic, settings.updates_topic, settings.families_topic
    )
    handler = DecisionHandler(
        linker,
        files,
        owns_all,
        ids,
        topics,
        settings.dlq_topic,
        DecisionPositions(settings.state_dir / "review-decisions.duckdb"),
        send,
        max_payload_bytes=settings.max_payload_bytes,
        second_review=SecondReview(settings.second_review_districts, settings.second_review_min_probability),
        changelog=ChangelogSink(changelog_writer or SendWriter(settings.changelog_topic, send))
        if settings.changelog_topic
        else None,
        source=source or KafkaDecisionSource(settings.bootstrap, security=settings.kafka_python_security()),
    )

    async def wait_for_submissions() -> None:
        await assigned.wait()
        deadline = time.monotonic() + settings.updates_catchup_seconds
        while time.monotonic() < deadline:
            tps = [TP(settings.submissions_topic, p) for p in sorted(owned)]
            ends = {tp.partition: _highwater(app, tp) for tp in tps}
            committed: Mapping[TP, Any] = getattr(app.consumer, "_committed_offset", {})
            if progress.caught_up(ends, {tp.partition: committed.get(tp) for tp in tps}):
                return
            await asyncio.sleep(0.1)
        log.warning(
            "review decisions: submissions not caught up after %.0f s; applying anyway",
            settings.updates_catchup_seconds,
        )

    async def apply(records: list[KafkaRecord]) -> None:
        await wait_for_submissions()
        async with lock:
            await handler.handle(records)

    def mine() -> set[int]:
        return set(owned) - set(excluded())

    async def idle() -> None:
        # Nothing new to read: catch up the owned files behind this reader, even without traffic.
        if not assigned.is_set() or handler.ready(mine()):
            return
        async with lock:
            await handler.catch_up(mine())

    async def before_submissions(partitions: Collection[int]) -> None:
        wanted = set(partitions) & mine()
        if handler.ready(wanted):
            return
        async with lock:
            await handler.catch_up(wanted)

    @app.task  # type: ignore[untyped-decorator]  # faust's decorator is untyped
    async def read_review_decisions() -> None:
        async def count_partitions(reader: ChangeReader) -> None:
            partitions_total.append(await reader.partition_count(settings.submissions_topic))

        await read_or_crash(
            ChangeReader(settings, [settings.review_decisions_topic]),
            handler.next_positions,
            apply,
            idle,
            max_records=settings.batch_max_members,
            crash=app.crash,
            started=count_partitions,
            failed=lambda why: log.error("review decisions: batch failed (%s); stopping for re-delivery", why),
        )

    return ReviewDecisions(handler, before_submissions)


class ReviewDecisions:
    """The decisions side of one linker instance: its handler, and the hook the submissions agent calls
    before a batch (`before_submissions`: the batch's files caught up with this instance's reader)."""

    def __init__(self, handler: DecisionHandler, before: Callable[[Collection[int]], Any]) -> None:
        self.handler = handler
        self._before = before

    async def before_submissions(self, partitions: Collection[int]) -> None:
        """Catch the given partitions' files up with the decisions reader (takes the engine lock)."""
        await self._before(partitions)


def _family_of(key: bytes) -> str:
    """The family key a decision record's key (a member key) starts with."""
    return key[:_FAMILY_KEY_LENGTH].decode("ascii", "replace")


def _highwater(app: faust.App, tp: TP) -> int | None:
    try:
        value = app.consumer.highwater(tp)
    except Exception:  # not fetched yet
        return None
    return None if value is None else int(value)
