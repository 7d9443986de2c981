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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import faust
from faust.types import TP

from integration.clerical import AppliedDecision, SecondReview
from integration.ids import PersonIds
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
from services.linker.updates.positions import advanced
from services.linker.updates.reader import ChangeReader, read_or_crash

log = logging.getLogger("regsosek.linker.decisions")


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
    ) -> None:
        self._master, self._files, self._owns_all = master, files, owns_all
        self._changelog = changelog  # the link-state changelog: the decided families' new states
        self._ids, self._topics, self._dlq = ids, topics, dlq_topic
        self._positions, self._send, self._max_bytes = positions, send, max_payload_bytes
        self.next_positions = positions.read()
        self._second = second_review
        self.totals: dict[str, int] = {"applied": 0, "duplicates": 0, "elsewhere": 0, "held": 0}
        self.dead_letters: dict[str, int] = {}

    async def handle(self, records: Sequence[KafkaRecord]) -> DecisionResult:
        """Call under the engine lock."""
        started = time.perf_counter()
        files = await asyncio.to_thread(self._files)
        owns_all = self._owns_all()

        def decisions_of(member_key: str) -> list[AppliedDecision]:
            for file in files.values():
                found = file.decisions_of(member_key)
                if found:
                    return found
            return []

        applier = DecisionApplier(
            self._master,
            StoreMemberIndex(lambda: files),
            decisions_of,
            self._ids,
            self._topics,
            self._dlq,
            max_bytes=self._max_bytes,
            unknown_is_elsewhere=not owns_all,
            second_review=self._second,
        )
        result = await asyncio.to_thread(applier.process, records)
        await self._produce_and_wait(result.records)
        target = advanced(self.next_positions, records)
        logged = await self._log_states(files, result)
        # A partition fenced on the changelog is another instance's now: its file is not written (the
        # new owner applies these decisions from its own reader); this reader's positions still move.
        kept = {p: f for p, f in files.items() if p not in logged.fenced}
        await asyncio.to_thread(self._save, kept, result, target, logged.after)
        self.next_positions = target
        for name, n in (
            ("applied", result.applied),
            ("duplicates", result.duplicates),
            ("elsewhere", result.elsewhere),
            ("held", result.held),
        ):
            self.totals[name] += n
        for reason, n in result.dead.items():
            self.dead_letters[reason] = self.dead_letters.get(reason, 0) + n
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

    async def _log_states(self, files: Mapping[int, LinkStore], result: DecisionResult) -> ChangelogWrite:
        """With the changelog: each decided family's new state (members, decision log) on its partition's
        changelog, committed; returns the changelog offsets reached (partition -> next offset) and the
        partitions fenced."""
        if self._changelog is None:
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

        return await self._changelog.write(await asyncio.to_thread(records))

    def _save(
        self,
        files: Mapping[int, LinkStore],
        result: DecisionResult,
        target: Mapping[tuple[str, int], int],
        logged: Mapping[int, int],
    ) -> None:
        states = by_partition(result.states.values())
        for p, file in sorted(files.items()):
            entries = [e for e in result.entries if result.partitions.get(e.member_key) == p]
            if entries or states.get(p):
                file.apply_decisions(entries, states.get(p, {}), {p: logged[p]} if p in logged else None)
        self._positions.save(target)

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
) -> DecisionHandler:
    """Add the decisions reader (a task) to `app`; its batches take turns with the others on `lock`.

    `changelog_writer`: the fenced changelog writer (by default `send`, unfenced); `excluded()`: owned
    partitions this instance must not touch (fenced on the changelog: another instance owns them now)."""
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

    async def idle() -> None:
        return None

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

    return handler


def _highwater(app: faust.App, tp: TP) -> int | None:
    try:
        value = app.consumer.highwater(tp)
    except Exception:  # not fetched yet
        return None
    return None if value is None else int(value)
