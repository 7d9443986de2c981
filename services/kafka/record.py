"""The one type of a consumed Kafka record, whichever client read it (kafka-python, aiokafka, faust).

Time is Kafka's: the record timestamp in epoch milliseconds (`timestamp_ms`). faust hands out float
seconds; `from_seconds` turns them back into the broker's milliseconds (exactly: faust divided the
broker's integer by 1000), so a time derived from a record (`time`) is the same whichever client read it.
A record to produce is a different thing (`services.linker.pipeline.OutboundRecord`: no position yet);
where the broker stored it, once acknowledged, is `Delivered`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KafkaRecord:
    """One record read from a topic: its position, raw key and value bytes, timestamp (ms) and headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    #: (name, bytes) pairs, in order.
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def time(self) -> dt.datetime:
        """The record timestamp as an aware UTC time."""
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC)

    @classmethod
    def of(cls, r: Any) -> KafkaRecord:
        """A kafka-python or aiokafka `ConsumerRecord` (timestamp in ms; a missing one is 0)."""
        headers = tuple((name, value) for name, value in (getattr(r, "headers", None) or ()))
        ts = r.timestamp if r.timestamp is not None else 0
        return cls(r.topic, r.partition, r.offset, r.key, r.value, int(ts), headers)

    @classmethod
    def from_seconds(cls, m: Any) -> KafkaRecord:
        """A faust message (`timestamp` in float seconds); the key and value are its raw bytes."""
        return cls(m.topic, m.partition, m.offset, m.key, m.value, round(m.timestamp * 1000))


@dataclass(frozen=True)
class Delivered:
    """Where an acknowledged record was written."""

    topic: str
    partition: int
    offset: int
