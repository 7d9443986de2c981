"""The per-instance reader of the change topics: every linker instance reads every change record.

The change topics are NOT consumed by the linker's consumer group (that would hand each change to one
instance only, while every instance holds a full master). Each instance runs an aiokafka consumer
without a group (`group_id=None`), assigned every partition of the change topics, positioned at the
journal's positions (`<state_dir>/master-updates.duckdb`; the beginning for partitions not read yet).
It never commits offsets to Kafka: the positions advance in the journal, in the transaction that
journals the batch, after every output of the batch was acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from services.kafka.aio import AIOKafkaConsumer, TopicPartition, reader, topic_partitions
from services.kafka.record import KafkaRecord
from services.linker.errors import LinkerConfigError
from services.linker.settings import LinkerSettings
from services.linker.storage_errors import describe_failure

log = logging.getLogger("regsosek.linker.updates")


def records_of(batch: Mapping[TopicPartition, Sequence[Any]]) -> list[KafkaRecord]:
    """An aiokafka `getmany` result in a fixed order: by topic and partition, then offset."""
    return [KafkaRecord.of(r) for tp in sorted(batch, key=lambda t: (t.topic, t.partition)) for r in batch[tp]]


class ChangeReader:
    """Reads every partition of the change topics from given positions, in batches."""

    def __init__(self, settings: LinkerSettings, topics: Sequence[str]) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Connect, assign every change partition and seek to `positions` (else to the beginning)."""
        s = self._settings
        consumer = reader(
            s.bootstrap.split(","),
            client_id=f"{s.app_id}-change-reader",
            auto_offset_reset="earliest",
            **s.aiokafka_security(),
        )
        await consumer.start()
        self._consumer = consumer
        # The consumer has no metadata of topics it will assign (not subscribe): ask the admin API.
        partitions = await self._partitions()
        missing = sorted(set(self._topics) - partitions.keys())
        if missing:
            raise LinkerConfigError(f"change topics {missing} do not exist: provision them (regsosek topics create)")
        tps = sorted(
            (TopicPartition(t, p) for t in self._topics for p in partitions[t]),
            key=lambda tp: (tp.topic, tp.partition),
        )
        consumer.assign(tps)
        fresh = []
        for tp in tps:
            pos = positions.get((tp.topic, tp.partition))
            if pos is None:
                fresh.append(tp)
            else:
                consumer.seek(tp, pos)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        log.info(
            "master updates: reading %d change partitions outside the consumer group (%d from the journal's "
            "positions, %d from the beginning)",
            len(tps),
            len(tps) - len(fresh),
            len(fresh),
        )

    async def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (0 when unknown), from the broker's metadata."""
        if self._consumer is None:
            raise RuntimeError("start() the reader first")
        return len((await self._partitions()).get(topic, ()))

    async def _partitions(self) -> dict[str, list[int]]:
        s = self._settings
        return await topic_partitions(
            s.bootstrap.split(","),
            client_id=f"{s.app_id}-change-reader",
            security=s.aiokafka_security(),
        )

    async def run(
        self,
        apply: Callable[[list[KafkaRecord]], Awaitable[None]],
        idle: Callable[[], Awaitable[None]],
        *,
        max_records: int,
        idle_ms: int = 500,
    ) -> None:
        """Hand each fetched batch to `apply` (in order; the next fetch position is the batch's end);
        call `idle` when a fetch returned nothing."""
        if self._consumer is None:
            raise RuntimeError("start() the reader first")
        while True:
            batch = await self._consumer.getmany(timeout_ms=idle_ms, max_records=max_records)
            records = records_of(batch)
            if records:
                await apply(records)
            else:
                await idle()

    async def stop(self) -> None:
        """Close the consumer (no offsets to commit: they live in the journal)."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def read_or_crash(
    reader: ChangeReader,
    positions: Mapping[tuple[str, int], int],
    apply: Callable[[list[KafkaRecord]], Awaitable[None]],
    idle: Callable[[], Awaitable[None]],
    *,
    max_records: int,
    crash: Callable[[Exception], Awaitable[None]],
    failed: Callable[[str], None],
    started: Callable[[ChangeReader], Awaitable[None]] | None = None,
) -> None:
    """Start `reader` at `positions` and run it; a failed batch is reported to `failed` (its cause, no
    data) and crashes the app via `crash`, so the batch, never recorded as done, is read again."""
    try:
        await reader.start(positions)
        if started is not None:
            await started(reader)
        await reader.run(apply, idle, max_records=max_records)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        failed(describe_failure(exc))
        await crash(exc)
        raise
    finally:
        await reader.stop()
