"""Consumer lag of a kafka-python consumer as a Prometheus gauge: end offset minus position, per partition.

The position is the next offset the consumer will read; the services commit it only after a batch's
outputs are acknowledged, so the gauge counts records not yet handled. End offsets cost one broker
round trip, so they are asked at most every `interval_s`. Labels are topic and partition only (bounded
by the topic catalogue); a partition that is no longer assigned loses its series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Gauge

from services.kafka.errors import KafkaError

log = logging.getLogger(__name__)


class OffsetsConsumer(Protocol):
    """The part of kafka-python's KafkaConsumer the lag needs."""

    def assignment(self) -> Collection[Any]: ...  # noqa: D102
    def end_offsets(self, partitions: list[Any]) -> Mapping[Any, int]: ...  # noqa: D102
    def position(self, partition: Any) -> int | None: ...  # noqa: D102


class ConsumerLag:
    """`<name>{topic, partition}`: records between a consumer's position and the partition's end."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gauge = Gauge(
            name,
            "Records not yet consumed: end offset minus the consumer's position.",
            ["topic", "partition"],
            registry=registry,
        )
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self._shown: set[tuple[str, str]] = set()

    def maybe_report(self, consumer: OffsetsConsumer) -> bool:
        """Refresh the gauge when `interval_s` has passed since the last refresh. True if refreshed.

        A broker error leaves the previous values (lag is telemetry: it never stops the service).
        """
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            return False
        self._last = now
        try:
            assigned = list(consumer.assignment())
            ends = consumer.end_offsets(assigned) if assigned else {}
            lags = {}
            for tp in assigned:
                position = consumer.position(tp)
                if position is not None and tp in ends:
                    lags[(tp.topic, str(tp.partition))] = max(0, ends[tp] - position)
        except (KafkaError, OSError) as exc:
            log.warning("consumer lag not refreshed: %s", type(exc).__name__)
            return False
        for labels in self._shown - set(lags):
            self.gauge.remove(*labels)
        for labels, lag in lags.items():
            self.gauge.labels(*labels).set(lag)
        self._shown = set(lags)
        return True
