"""The link-state changelog on Kafka: the reader (`changelog.ChangelogReader`) and the fenced writer
(`changelog.ChangelogWriter`).

Reader: no consumer group: the partition is assigned by hand, read from an offset to the end it had
when the read began, and nothing is committed. It reads with isolation_level='read_committed': the end
is the partition's last stable offset, and records of aborted transactions (a fenced old owner's) are
never returned. A committed transaction is below that end, so a restore sees every record its previous
owner's writes had committed.

Writer (the fence, issue 12): one transactional producer per changelog partition this instance owns,
with a transactional id that is the same on every instance (`<app id>.changelog.<partition>`). Starting
it when the partition is assigned (before its file is restored) makes the broker bump the id's epoch:
an open transaction of the previous owner is aborted, and the previous owner's producer is fenced. Each
write to a partition is one transaction on its producer; a fenced write comes back in
`ChangelogWrite.fenced`, and the partition stays fenced here (its producer is closed, never started
again by a write) until the consumer group assigns it to this instance again (`acquire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from services.kafka.aio import AIOKafkaProducer, forget_fenced_errors, transactional_producer
from services.kafka.clients import TopicPartition, reader
from services.kafka.errors import AioProducerFenced
from services.linker.changelog import ChangelogWrite

log = logging.getLogger("regsosek.linker.changelog")


class KafkaChangelogReader:
    """`read(partition, from_offset)` over one changelog topic."""

    def __init__(
        self, bootstrap: str, topic: str, *, security: Mapping[str, Any] | None = None, timeout_s: float = 120.0
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._security = dict(security or {})
        self._timeout_s = timeout_s

    def read(self, partition: int, from_offset: int) -> tuple[list[bytes], int]:
        """Values from `from_offset` to the partition's end (tombstones left out), and that end."""
        values: list[bytes] = []
        end = from_offset
        for chunk, after in self.chunks(partition, from_offset, 0):
            values.extend(chunk)
            end = after
        return values, end

    def partition_count(self) -> int:
        """How many partitions the changelog topic has."""
        consumer = self._consumer()
        try:
            parts = consumer.partitions_for_topic(self._topic)
            if not parts:
                raise RuntimeError(f"the changelog topic {self._topic} does not exist")
            return len(parts)
        finally:
            consumer.close()

    def end_offset(self, partition: int) -> int:
        """The partition's current end (the next offset to be written)."""
        consumer = self._consumer()
        try:
            tp = TopicPartition(self._topic, partition)
            return int(consumer.end_offsets([tp])[tp])
        finally:
            consumer.close()

    def chunks(self, partition: int, from_offset: int, max_records: int) -> Iterator[tuple[list[bytes], int]]:
        """Values from `from_offset` to the end the read began with, in chunks of at most `max_records`
        (0: one chunk), each with the next offset after it; nothing when there is nothing to read."""
        consumer = self._consumer()
        try:
            tp = TopicPartition(self._topic, partition)
            consumer.assign([tp])
            end = int(consumer.end_offsets([tp])[tp])
            if end <= from_offset:
                return
            consumer.seek(tp, from_offset)
            values: list[bytes] = []
            deadline = time.monotonic() + self._timeout_s
            position = from_offset
            while position < end:
                if time.monotonic() > deadline:
                    limit = f"{self._timeout_s:.0f} s"
                    raise TimeoutError(
                        f"restoring {self._topic}[{partition}] did not reach offset {end} within {limit}"
                    )
                # At most what fits in the chunk per poll, so a chunk never holds more (bounded memory).
                room = max_records - len(values) if max_records else None
                polled = consumer.poll(timeout_ms=500, max_records=room)
                for batch in polled.values():
                    for r in batch:
                        if r.offset >= end:
                            continue
                        position = r.offset + 1
                        if r.value is not None:
                            values.append(r.value)
                # Offsets compaction removed (or the end of a read that found only tombstones).
                position = max(position, min(consumer.position(tp), end))
                if position >= end or (max_records and len(values) >= max_records):
                    yield values, position
                    values = []
            if values:
                yield values, position
        finally:
            consumer.close()

    def _consumer(self) -> Any:
        return reader(
            self._bootstrap,
            client_id="regsosek-linker-changelog",
            auto_offset_reset="earliest",  # an offset compaction removed: the next one kept
            # Never a fenced old owner's aborted write; the end a read begins with is the last stable offset.
            isolation_level="read_committed",
            # One partition is read: let one fetch bring up to 4 MiB of it (the reader's response limit
            # is above that, services.kafka.clients.FETCH_LIMITS). bench/restore.py measures the rate.
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self._security,
        )


def transactional_id(app_id: str, partition: int) -> str:
    """The transactional id of a changelog partition's producer: the same on every instance of the app."""
    return f"{app_id}.changelog.{partition}"


class KafkaChangelogWriter:
    """`write(records)` over one changelog topic, each partition's records in one transaction of that
    partition's producer (see the module docstring: the fence)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        app_id: str,
        *,
        security: Mapping[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._app_id = app_id
        self._security = dict(security or {})
        self._timeout_s = timeout_s
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._fenced: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        #: Called once when a partition's write is fenced (the app logs, counts and drops its state).
        self.on_fenced: Callable[[int], None] | None = None

    def fenced(self) -> frozenset[int]:
        """Partitions whose write was fenced since they were last acquired (this instance is not their
        owner any more)."""
        return frozenset(self._fenced)

    def held(self) -> list[int]:
        """Partitions with a started producer."""
        return sorted(self._producers)

    async def acquire(self, partitions: Collection[int]) -> None:
        """The consumer group assigned `partitions` to this instance: start their producers (a started
        one is restarted: a new epoch), which fences every older producer of the same partitions. Call
        before the partitions' files are restored."""
        await asyncio.gather(*(self._start(p) for p in sorted(set(partitions))))

    async def release(self, partitions: Collection[int]) -> None:
        """The partitions were revoked: close their producers (no transaction is open between writes)."""
        await asyncio.gather(*(self._stop(p) for p in sorted(set(partitions))))
        self._fenced.difference_update(partitions)

    async def close(self) -> None:
        """Close every producer."""
        await self.release(list(self._producers))

    async def write(self, records: Mapping[int, Sequence[tuple[bytes, bytes]]]) -> ChangelogWrite:
        """Each partition's records in one transaction (the partitions in parallel), committed; a
        partition whose producer was fenced (now or before) comes back in `fenced`, nothing of it
        committed. Any other failure is raised (the caller crashes for re-delivery, as before)."""
        parts = sorted(p for p, rs in records.items() if rs)
        ends = await asyncio.gather(*(self._write_one(p, records[p]) for p in parts))
        after = {p: end for p, end in zip(parts, ends, strict=True) if end is not None}
        return ChangelogWrite(after, frozenset(p for p, end in zip(parts, ends, strict=True) if end is None))

    async def _write_one(self, partition: int, records: Sequence[tuple[bytes, bytes]]) -> int | None:
        async with self._lock(partition):
            if partition in self._fenced:
                return None
            producer = self._producers.get(partition)
            if producer is None:
                # Assigned but the assignment callback has not started it yet: start it now. A partition
                # that was fenced is never started here (only a new assignment does: `acquire`).
                producer = await self._start_locked(partition)
            try:
                await producer.begin_transaction()
                pending = [await producer.send(self._topic, v, key=k, partition=partition) for k, v in records]
                metas = await asyncio.gather(*pending)
                await producer.commit_transaction()
            except AioProducerFenced:
                self._fenced.add(partition)
                forget_fenced_errors(producer)
                await self._stop_locked(partition)
                if self.on_fenced is not None:
                    self.on_fenced(partition)
                return None
            except BaseException:
                # Not a fence (the broker unreachable, a timeout): the caller crashes for re-delivery;
                # the open transaction is aborted (by the broker at the latest, on its timeout).
                with contextlib.suppress(Exception):
                    await producer.abort_transaction()
                raise
            return max(int(m.offset) for m in metas) + 1

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._locks.setdefault(partition, asyncio.Lock())

    async def _start(self, partition: int) -> None:
        async with self._lock(partition):
            await self._stop_locked(partition)
            await self._start_locked(partition)

    async def _start_locked(self, partition: int) -> AIOKafkaProducer:
        producer = transactional_producer(
            self._bootstrap,
            client_id=f"regsosek-linker-changelog-p{partition}",
            transactional_id=transactional_id(self._app_id, partition),
            timeout_s=self._timeout_s,
            # A batch writes hundreds of family records of about 6 kB to one partition: let them share
            # requests (the client's default batch of 16 kB held two or three records each), as the
            # linker's faust producer does for its outputs.
            linger_ms=5,
            max_batch_size=262_144,
            **self._security,
        )
        try:
            await producer.start()  # InitProducerId: the new epoch that fences the previous owner
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producers[partition] = producer
        self._fenced.discard(partition)
        return producer

    async def _stop(self, partition: int) -> None:
        async with self._lock(partition):
            await self._stop_locked(partition)

    async def _stop_locked(self, partition: int) -> None:
        producer = self._producers.pop(partition, None)
        if producer is not None:
            with contextlib.suppress(Exception):  # a fenced producer's sender has already failed
                await producer.stop()
