"""Wiring the updates into the linker's faust app: a per-instance change reader and the file gate.

The linker owns the engine and the link store, so the change applier runs in the same process, on the
same engine instance and link-store files. Every instance holds a full master, so every instance reads
every change record: not through the consumer group, but with its own reader (`reader.py`, a faust
task of the app) whose positions live in the instance's journal. Each change is applied to this
instance's engine, and its members are re-linked in the link-store files of the submissions partitions
this instance owns (`handler.py`). The reader's batches and the submissions agent's batches take
turns on one asyncio lock.

Ordering: before a change batch is applied, the reader waits (at most `updates_catchup_seconds`) until
the submissions agent has handled every submission up to the current end of its partitions: a change
then applies after the submissions that preceded it, and a replay from scratch yields the same events.

Hand-over: a file this instance acquires may be behind its engine (caught up from the journal before
the partition's next submissions are linked, or when the reader is idle) or ahead of it (the previous
owner had read further): then that partition's submissions wait (at most
`updates_ahead_wait_seconds`) until this instance's reader has passed the file's positions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

import faust
from faust.types import TP

from integration.ids import PersonIds
from integration.port import MemberLinker
from services.kafka.record import KafkaRecord
from services.linker.changelog import ChangelogSink, ChangelogWriter, SendWriter
from services.linker.errors import LinkerConfigError
from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.pipeline import Send
from services.linker.progress import SubmissionsProgress
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore
from services.linker.updates.applier import LinkingMaster, UpdateTopics
from services.linker.updates.changes import ChangeTopicKind
from services.linker.updates.handler import ChangeHandler, ChangeRecorder
from services.linker.updates.journal import MasterJournal
from services.linker.updates.reader import ChangeReader, read_or_crash

log = logging.getLogger("regsosek.linker.updates")


class MasterUpdates:
    """The updates side of one linker instance: the change reader and the gate of the submissions."""

    def __init__(
        self,
        app: faust.App,
        settings: LinkerSettings,
        handler: ChangeHandler,
        lock: asyncio.Lock,
        progress: SubmissionsProgress,
    ) -> None:
        self._app = app
        self._settings = settings
        self.handler = handler
        self._lock = lock
        self._progress = progress
        self._assigned = asyncio.Event()  # the group assigned this instance its partitions once
        # The submissions partitions owned now. Kept here, not read from the consumer: during a
        # rebalance the consumer still reports the revoked partitions, and this reader (unlike the
        # agents) keeps running, so it must not re-open a file the revocation hook has just closed.
        self._owned: set[int] = set()
        self._gate_waiting = False  # the submissions agent waits for this instance's reader
        self._given_up: set[int] = set()  # files still ahead after the longest wait (linked anyway)

    @property
    def given_up(self) -> frozenset[int]:
        """Owned files still ahead of this master after the longest wait, whose submissions are linked anyway."""
        return frozenset(self._given_up)

    def owned(self) -> list[TP]:
        """The submissions partitions this instance owns now."""
        return [TP(self._settings.submissions_topic, p) for p in sorted(self._owned)]

    def assigned(self, tps: Collection[TP]) -> None:
        """The group assigned these partitions (all of this instance's; the ordering wait starts then)."""
        self._owned = {tp.partition for tp in tps if tp.topic == self._settings.submissions_topic}
        self._assigned.set()

    def released(self, partitions: Collection[int]) -> None:
        """Partitions revoked, their files about to be closed (call under the engine lock)."""
        self._owned -= set(partitions)
        self.handler.forget(partitions)
        self._given_up -= set(partitions)

    async def before_submissions(self, partitions: Collection[int]) -> None:
        """Before a submissions batch: its files must hold exactly this instance's changes.

        Files behind the engine are caught up from the journal; for files ahead of it, wait (bounded)
        until the reader has passed their positions: their submissions must not be linked against an
        older master.
        """
        wanted = (set(partitions) & self._owned) - self._given_up  # records of revoked ones are dropped
        if self.handler.ready(wanted):
            return
        limit = self._settings.updates_ahead_wait_seconds
        deadline = time.monotonic() + limit
        waited = False
        try:
            while True:
                async with self._lock:
                    ahead = await self.handler.sync(wanted)
                if not ahead:
                    if waited:
                        log.info(
                            "master updates: link-store files %s reached this instance's master; linking",
                            sorted(wanted),
                        )
                    return
                if not waited:
                    # Only now: while it merely syncs, the reader's ordering wait must still hold.
                    self._gate_waiting = waited = True
                    log.info(
                        "master updates: link-store files %s are ahead of this instance's master (their "
                        "previous owner had read more changes); their submissions wait for the change "
                        "reader, at most %.0f s",
                        sorted(ahead),
                        limit,
                    )
                if time.monotonic() > deadline:
                    self._given_up |= ahead
                    log.warning(
                        "master updates: link-store files %s still ahead of this instance's master "
                        "after %.0f s; linking their submissions against it anyway",
                        sorted(ahead),
                        limit,
                    )
                    return
                await asyncio.sleep(0.2)
        finally:
            self._gate_waiting = False

    def _highwater(self, tp: TP) -> int | None:
        try:
            value = self._app.consumer.highwater(tp)
        except Exception:  # not fetched yet
            return None
        return None if value is None else int(value)

    async def wait_for_submissions(self) -> None:
        """Until the submissions agent has handled its partitions up to their current end (bounded)."""
        deadline = time.monotonic() + self._settings.updates_catchup_seconds
        while True:
            if self._gate_waiting:
                return  # the submissions agent waits for this reader: do not wait for it in turn
            if self._assigned.is_set():
                tps = [tp for tp in self.owned() if tp.partition not in self.handler.blocked]
                ends = {tp.partition: self._highwater(tp) for tp in tps}
                # faust keeps the group's committed offsets here (no public accessor in 0.15.3).
                committed: Mapping[TP, Any] = getattr(self._app.consumer, "_committed_offset", {})
                if self._progress.caught_up(ends, {tp.partition: committed.get(tp) for tp in tps}):
                    return
            if time.monotonic() > deadline:
                log.warning(
                    "master updates: submissions not caught up after %.0f s; applying anyway",
                    self._settings.updates_catchup_seconds,
                )
                return
            await asyncio.sleep(0.1)

    async def apply(self, records: list[KafkaRecord]) -> None:
        """One batch of the reader: wait for the submissions, then apply it under the engine lock."""
        await self.wait_for_submissions()
        async with self._lock:
            await self.handler.handle(records)

    async def idle(self) -> None:
        """Nothing new to read: catch up the owned files that lag behind this instance's engine."""
        if not self._assigned.is_set():
            return
        owned = {tp.partition for tp in self.owned()}
        if self.handler.ready(owned):
            return
        async with self._lock:
            await self.handler.sync(owned)


def install_updates(
    app: faust.App,
    settings: LinkerSettings,
    *,
    linker: MemberLinker,
    store: PartitionedLinkStore,
    ids: PersonIds,
    send: Send,
    lock: asyncio.Lock,
    progress: SubmissionsProgress,
    recorder: ChangeRecorder | None = None,
    changelog_writer: ChangelogWriter | None = None,
) -> MasterUpdates:
    """Replay the journal into the engine and add the change reader (a task) to `app`.

    `linker` must be the engine object itself (metrics attach to it, they do not wrap it);
    `recorder` counts each applied change batch (metrics), optional; `changelog_writer` the fenced
    changelog writer (by default `send`, unfenced; a fenced partition is `released` by the app).
    """
    if not (hasattr(linker, "upsert_master") and hasattr(linker, "set_sectoral")):
        raise LinkerConfigError("the configured engine cannot take master updates")
    master: LinkingMaster = linker  # type: ignore[assignment]  # checked just above
    journal = MasterJournal(settings.state_dir / "master-updates.duckdb")
    replayed = journal.replay(master)
    if replayed:
        log.info("master updates: %d journalled changes re-applied to the engine", replayed)
    updates: MasterUpdates | None = None

    def files() -> Mapping[int, LinkStore]:
        assert updates is not None
        return {tp.partition: store.file(tp.partition) for tp in updates.owned()}

    topics = UpdateTopics(
        settings.members_topic, settings.review_topic, settings.updates_topic, settings.families_topic
    )
    kinds: dict[str, ChangeTopicKind] = {
        settings.population_changes_topic: "population",
        settings.dtks_changes_topic: "dtks",
        settings.bpjs_changes_topic: "bpjs",
    }
    handler = ChangeHandler(
        master,
        files,
        ids,
        topics,
        journal,
        kinds,
        settings.dlq_topic,
        max_payload_bytes=settings.max_payload_bytes,
        recorder=recorder,
        changelog=ChangelogSink(changelog_writer or SendWriter(settings.changelog_topic, send))
        if settings.changelog_topic
        else None,
    )
    handler.bind_sender(send)
    updates = MasterUpdates(app, settings, handler, lock, progress)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def note_assignment(sender: Any, assigned: set[TP], **_: Any) -> None:
        updates.assigned(assigned)

    @app.task  # type: ignore[untyped-decorator]  # faust's decorator is untyped
    async def read_master_changes() -> None:
        await read_or_crash(
            ChangeReader(settings, list(kinds)),
            handler.engine_positions,
            updates.apply,
            updates.idle,
            max_records=settings.batch_max_members,
            crash=app.crash,
            failed=lambda why: log.error("master updates: change batch failed (%s); stopping for re-delivery", why),
        )

    return updates
