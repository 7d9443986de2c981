"""Wiring the updates into the linker's faust app: a second agent over the change topics.

The linker owns the engine and the link store, so the change applier runs in the same process, on the
same engine instance and link-store files, as an agent of the same app. The two agents' batches take
turns on one asyncio lock. Before a change batch is applied, the agent waits (at most
`updates_catchup_seconds`) until the submissions agent has handled every submission up to the current
end of its partitions: a change then applies after the submissions that preceded it, and a replay
from scratch yields the same update events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import faust
from faust.types import TP

from services.linker.errors import LinkerConfigError
from services.linker.ids import PersonIds
from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.port import MemberLinker
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore, LinkStoreLike
from services.updates.applier import ChangeApplier, LinkingMaster, UpdateTopics
from services.updates.changes import ChangeTopicKind
from services.updates.handler import ChangeHandler, Send, StoreMemberIndex
from services.updates.journal import MasterJournal
from services.updates.progress import SubmissionsProgress

log = logging.getLogger("regsosek.linker.updates")


def install_updates(
    app: faust.App,
    settings: LinkerSettings,
    *,
    linker: MemberLinker,
    store: LinkStoreLike,
    ids: PersonIds,
    send: Send,
    lock: asyncio.Lock,
    progress: SubmissionsProgress,
) -> ChangeHandler:
    """Replay the journal into the engine and add the `apply-master-changes` agent to `app`."""
    if not (hasattr(linker, "upsert_master") and hasattr(linker, "set_sectoral")):
        raise LinkerConfigError("the configured engine cannot take master updates")
    master: LinkingMaster = linker  # type: ignore[assignment]  # checked just above
    journal = MasterJournal(settings.state_dir / "master-updates.duckdb")
    replayed = journal.replay(master)
    if replayed:
        log.info("master updates: %d journalled changes re-applied to the engine", replayed)

    def owned() -> list[TP]:
        return sorted(tp for tp in app.consumer.assignment() if tp.topic == settings.submissions_topic)

    def files() -> Mapping[int, LinkStore]:
        if isinstance(store, PartitionedLinkStore):
            return {tp.partition: store.file(tp.partition) for tp in owned()}
        if isinstance(store, LinkStore):
            return {0: store}
        raise LinkerConfigError("master updates need a DuckDB link store")

    index = StoreMemberIndex(files)
    topics = UpdateTopics(settings.members_topic, settings.review_topic, settings.updates_topic,
                          settings.families_topic)  # fmt: skip
    kinds: dict[str, ChangeTopicKind] = {
        settings.population_changes_topic: "population",
        settings.dtks_changes_topic: "dtks",
        settings.bpjs_changes_topic: "bpjs",
    }
    handler = ChangeHandler(
        ChangeApplier(master, index, ids, topics), index, journal, kinds, settings.dlq_topic,
        max_payload_bytes=settings.max_payload_bytes,
    )  # fmt: skip
    handler.bind_sender(send)
    source = app.topic(*kinds, key_serializer="raw", value_serializer="raw")

    def highwater(tp: TP) -> int | None:
        try:
            value = app.consumer.highwater(tp)
        except Exception:  # not fetched yet
            return None
        return None if value is None else int(value)

    async def wait_for_submissions() -> None:
        deadline = time.monotonic() + settings.updates_catchup_seconds
        while True:
            tps = owned()
            ends = {tp.partition: highwater(tp) for tp in tps}
            # faust keeps the group's committed offsets here (no public accessor in 0.15.3).
            committed: Mapping[TP, Any] = getattr(app.consumer, "_committed_offset", {})
            if progress.caught_up(ends, {tp.partition: committed.get(tp) for tp in tps}):
                return
            if time.monotonic() > deadline:
                log.warning("master updates: submissions not caught up after %.0f s; applying anyway",
                            settings.updates_catchup_seconds)  # fmt: skip
                return
            await asyncio.sleep(0.1)

    warned: list[bool] = []

    def warn_if_sharing() -> None:
        # Changes reach one instance of the group only (docs/linker.md, "Limits"): say so once.
        total = app.consumer.topic_partitions(settings.submissions_topic)
        if not warned and total and len(owned()) < total:
            warned.append(True)
            log.warning("master updates: this instance owns %d of %d submissions partitions; members of the "
                        "others miss the changes it applies (run one instance with updates)", len(owned()), total)

    @app.agent(source, name="apply-master-changes")
    async def apply_master_changes(stream: Any) -> None:
        within = settings.batch_wait_seconds
        async for events in stream.take_events(settings.batch_max_members, within=within):
            await wait_for_submissions()
            warn_if_sharing()
            try:
                async with lock:
                    await handler.handle(events)
            except Exception as exc:
                log.error("update batch failed (%s); stopping for re-delivery", type(exc).__name__)
                await app.crash(exc)
                raise

    return handler
