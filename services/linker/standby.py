"""Wiring standby replicas into the linker's faust app (`REGSOSEK_LINKER_STANDBY_PARTITIONS`).

On every assignment the instance chooses the partitions it keeps replicas of among those it was not
given (`partitioned_store.standby_partitions`), and a background task brings their files up to their
changelog partitions' ends, one pass every `standby_interval_seconds` (in a worker thread: DuckDB and
the Kafka reads block). When a partition is assigned to this instance, the first batch that opens its
file takes the replica over (`StandbyFiles.take`): the replica's running pass stops after its chunk and
closes the file, and the owner's restore reads only what was written after the replica's position.
A failed pass (the broker unreachable, a full disk) is logged and retried on the next pass: a replica
is a cache, the owner's own restore stays correct without it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.types import TP

from services.linker.partitioned_store import PartitionedLinkStore, StandbyFiles, standby_partitions
from services.linker.settings import LinkerSettings
from services.linker.storage_errors import describe_failure

log = logging.getLogger("regsosek.linker.standby")


def install_standby(
    app: faust.App, settings: LinkerSettings, store: PartitionedLinkStore, partition_count: Any
) -> StandbyFiles | None:
    """Add the standby replicas to `app` when the setting asks for them; `partition_count()` gives the
    number of changelog partitions (called once, in a worker thread)."""
    standby = store.standby
    if standby is None or settings.standby_partitions.strip() in ("", "0"):
        return None
    total: list[int] = []

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def choose_standby(sender: Any, assigned: set[TP], **_: Any) -> None:
        owned = {tp.partition for tp in assigned if tp.topic == settings.submissions_topic}
        if not total:
            total.append(int(await asyncio.to_thread(partition_count)))
        chosen = standby_partitions(owned, total[0], settings.standby_partitions)
        await asyncio.to_thread(standby.want, chosen)
        log.info("standby replicas of partitions %s (owning %s)", sorted(chosen), sorted(owned))

    @app.task  # type: ignore[untyped-decorator]  # faust's decorator is untyped
    async def tail_standby_replicas() -> None:
        try:
            while True:
                try:
                    read = await asyncio.to_thread(standby.tail)
                    if read:
                        log.info("standby replicas: %d changelog records applied", read)
                except Exception as exc:
                    log.error("standby replicas: pass failed (%s); retrying", describe_failure(exc))
                await asyncio.sleep(settings.standby_interval_seconds)
        finally:
            # Stopping (the task is cancelled): a pass running in its thread ends after its chunk, so
            # the process does not wait for a long first read of a replica's changelog.
            standby.halt()

    return standby
