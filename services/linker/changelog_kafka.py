"""Reads a partition of the link-state changelog from Kafka (the `changelog.ChangelogReader` adapter).

No consumer group: the partition is assigned by hand, read from an offset to the end it had when the
read began, and nothing is committed. With acks='all' an acknowledged record is below that end, so
a restore sees every record its previous owner's batches had acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
        consumer = reader(
            self._bootstrap,
            client_id="regsosek-linker-changelog",
            auto_offset_reset="earliest",  # an offset compaction removed: the next one kept
            # One partition is read: let one fetch bring up to 4 MiB of it (the reader's response limit
            # is above that, services.kafka.clients.FETCH_LIMITS). bench/restore.py measures the rate.
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self._security,
        )
        try:
            tp = TopicPartition(self._topic, partition)
            consumer.assign([tp])
            end = int(consumer.end_offsets([tp])[tp])
            if end <= from_offset:
                return [], max(end, from_offset)
            consumer.seek(tp, from_offset)
            values: list[bytes] = []
            deadline = time.monotonic() + self._timeout_s
            while consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    limit = f"{self._timeout_s:.0f} s"
                    raise TimeoutError(
                        f"restoring {self._topic}[{partition}] did not reach offset {end} within {limit}"
                    )
                for batch in consumer.poll(timeout_ms=500).values():
                    values.extend(r.value for r in batch if r.offset < end and r.value is not None)
            return values, end
        finally:
            consumer.close()
