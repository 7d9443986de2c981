"""A fake of the linker's `Send` port that acknowledges at once, and the changelog it wrote as a reader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from services.linker.pipeline import OutboundRecord


class AckingProducer:
    """Acknowledges every record at once with its offset (per topic and partition), and notes, per
    record, how many earlier records were acknowledged when it was sent."""

    def __init__(self) -> None:
        self.sent: list[OutboundRecord] = []
        self.acked_before: list[int] = []
        self._acked = 0
        self._next: dict[tuple[str, int | None], int] = {}

    async def __call__(self, rec: OutboundRecord) -> asyncio.Future[Any]:
        self.sent.append(rec)
        self.acked_before.append(self._acked)
        offset = self._next[(rec.topic, rec.partition)] = self._next.get((rec.topic, rec.partition), -1) + 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _: self._count())
        fut.set_result(SimpleNamespace(partition=rec.partition, offset=offset))
        return fut

    def _count(self) -> None:
        self._acked += 1

    def log(self, topic: str, partition: int) -> list[bytes]:
        """The values sent to one partition of `topic`, in order (a tombstone as b"")."""
        return [r.value or b"" for r in self.sent if r.topic == topic and r.partition == partition]


class LogReader:
    """A changelog reader (`services.linker.changelog.ChangelogReader`) over what a producer sent to `topic`."""

    def __init__(self, producer: AckingProducer, topic: str) -> None:
        self._producer, self._topic = producer, topic

    def read(self, partition: int, from_offset: int) -> tuple[list[bytes], int]:
        values = self._producer.log(self._topic, partition)
        return values[from_offset:], len(values)

    def chunks(self, partition: int, from_offset: int, max_records: int) -> Iterator[tuple[list[bytes], int]]:
        values, end = self.read(partition, from_offset)
        if values:
            yield values, end
