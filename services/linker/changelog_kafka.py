"""Reads a partition of the link-state changelog from Kafka (the `changelog.ChangelogReader` adapter).

No consumer group: the partition is assigned by hand, read from an offset to the end it had when the
read began, and nothing is committed. With acks='all' an acknowledged record is below that end, so
a restore sees every record its previous owner's batches had acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from services.kafka.clients import TopicPartition, reader


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
            # One partition is read: let one fetch bring up to 4 MiB of it (the reader's response limit
            # is above that, services.kafka.clients.FETCH_LIMITS). bench/restore.py measures the rate.
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self._security,
        )
