"""`BatchRecorder`: what the linker's faust handler reports after each micro-batch.

The handler passes its raw events and the records it produced (after every acknowledgement); the recorder
derives the per-topic counters, dead-letter reasons, end-to-end event ages, batch size and duration,
the last-processed time and the consumer lag per partition. It reads only positions, timestamps, topic
names and the dead letter's `reason`, never a payload's personal data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from services.observability.linker_metrics import LinkerMetrics

#: (topic, partition) -> the partition's high watermark (next offset to be written), None if unknown.
Highwater = Callable[[str, int], int | None]


class ProducedRecord(Protocol):
    """What the recorder needs of an outbound record (the linker's `OutboundRecord` fits)."""

    @property
    def topic(self) -> str: ...

    @property
    def value(self) -> bytes | None: ...


class BatchRecorder:
    """Updates `LinkerMetrics` from finished micro-batches; `highwater` enables the lag gauge."""

    def __init__(
        self, metrics: LinkerMetrics, *, dlq_topic: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._m = metrics
        self._dlq = dlq_topic
        self._clock = clock
        self._highwater: Highwater | None = None
        self._next_offsets: dict[tuple[str, int], int] = {}

    def bind_highwater(self, highwater: Highwater) -> None:
        """Where to read high watermarks from (the running consumer)."""
        self._highwater = highwater

    def batch_done(self, events: Sequence[Any], records: Iterable[ProducedRecord], seconds: float) -> None:
        """Record one acknowledged micro-batch of faust events and the records it produced."""
        now = self._clock()
        m = self._m
        m.batch_records.observe(len(events))
        m.batch_duration.observe(seconds)
        for event in events:
            msg = event.message
            m.messages_consumed.labels(topic=msg.topic).inc()
            if msg.timestamp:
                m.event_age.observe(max(0.0, now - msg.timestamp))
            key = (msg.topic, msg.partition)
            self._next_offsets[key] = max(self._next_offsets.get(key, 0), msg.offset + 1)
        for record in records:
            m.messages_produced.labels(topic=record.topic).inc()
            if record.topic == self._dlq:
                m.dead_letters.labels(reason=_reason(record.value)).inc()
        m.last_processed.set(now)
        self.refresh_lag()

    def refresh_lag(self) -> None:
        """Set the lag of every partition seen so far: high watermark minus the next offset to process."""
        if self._highwater is None:
            return
        for (topic, partition), next_offset in self._next_offsets.items():
            try:
                high = self._highwater(topic, partition)
            except Exception:  # e.g. a partition revoked by a rebalance: metrics must never crash the worker
                continue
            if high is not None:
                lag = max(0, high - next_offset)
                self._m.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)


def _reason(value: bytes | None) -> str:
    # The dead letter is the linker's own canonical JSON; its reason is one of the enum's values.
    try:
        return str(json.loads(value or b"{}")["reason"])
    except (ValueError, KeyError, TypeError):
        return "schema_violation"
