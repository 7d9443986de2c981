"""`BatchRecorder`: what the linker's batch paths report once a batch's outputs are acknowledged.

The submissions handler passes its raw events, the records it produced and the batch result; the
recorder derives the per-topic counters, dead-letter reasons, end-to-end event ages, batch size and
duration, the last-processed time, the consumer lag per partition, and from the result's current
revisions the members without NIK and region progress. The master updates' handler passes the change
records it read and the records it produced (`changes_done`): per-topic counters and dead letters.
It reads only positions, timestamps, topic names, bands and the dead letter's `reason`, never a
payload's personal data. (The engine's own calls are observed by `PrometheusLinkageObserver`, attached
to the engine object: see `services/linker/metrics_wiring.py`.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from services.kafka.record import KafkaRecord
from services.observability.linker_metrics import LinkerMetrics
from services.observability.region import RegionProgress

#: (topic, partition) -> the partition's high watermark (next offset to be written), None if unknown.
Highwater = Callable[[str, int], int | None]


class ProducedRecord(Protocol):
    """What the recorder needs of an outbound record (the linker's `OutboundRecord` fits)."""

    @property
    def topic(self) -> str: ...

    @property
    def value(self) -> bytes | None: ...


class LinkedBatch(Protocol):
    """What the recorder needs of a submissions batch's result (the linker's `BatchResult` fits)."""

    @property
    def family_bands(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def members_without_nik(self) -> int: ...


class BatchRecorder:
    """Updates `LinkerMetrics` (and region progress) from finished batches; `highwater` enables the lag gauge."""

    def __init__(
        self,
        metrics: LinkerMetrics,
        *,
        dlq_topic: str,
        region: RegionProgress | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._m = metrics
        self._dlq = dlq_topic
        self._region = region
        self._clock = clock
        self._highwater: Highwater | None = None
        self._next_offsets: dict[tuple[str, int], int] = {}

    @property
    def metrics(self) -> LinkerMetrics:
        """The metric families this recorder updates (the Kafka-client sensor adds to them)."""
        return self._m

    def bind_highwater(self, highwater: Highwater) -> None:
        """Where to read high watermarks from (the running consumer)."""
        self._highwater = highwater

    def batch_done(
        self,
        events: Sequence[Any],
        records: Iterable[ProducedRecord],
        seconds: float,
        result: LinkedBatch | None = None,
    ) -> None:
        """Record one acknowledged micro-batch of faust events, the records it produced and its result."""
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
        self._produced(records)
        if result is not None:
            m.members_without_nik.inc(result.members_without_nik)
            if self._region is not None and result.family_bands:
                # Current revisions only: a stale revision was dropped from the result, so it changes no gauge.
                self._region.families_linked(result.family_bands)
                m.review_backlog.set(self._region.review_backlog())
        m.last_processed.set(now)
        self.refresh_lag()

    def changes_done(self, consumed: Iterable[KafkaRecord], produced: Iterable[ProducedRecord]) -> None:
        """Record one applied batch of master/sectoral change records and what it produced (acknowledged)."""
        for record in consumed:
            self._m.messages_consumed.labels(topic=record.topic).inc()
            # The change reader's position, so `refresh_lag` reports the updates reader's lag too.
            key = (record.topic, record.partition)
            self._next_offsets[key] = max(self._next_offsets.get(key, 0), record.offset + 1)
        self._produced(produced)

    def _produced(self, records: Iterable[ProducedRecord]) -> None:
        m = self._m
        for record in records:
            m.messages_produced.labels(topic=record.topic).inc()
            if record.topic == self._dlq:
                m.dead_letters.labels(reason=_reason(record.value)).inc()

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
