"""faust's sensor hooks -> the linker's Kafka-client metrics (commits, rebalances, owned partitions).

faust calls a registered `Sensor` around each offset commit and each rebalance; this one turns those
calls into the `regsosek_linker_offset_commit*`, `regsosek_linker_rebalance*` and
`regsosek_linker_assigned_partitions` families of `LinkerMetrics`. The linkage metrics stay with the
batch recorder and the engine observer: faust does not see them (docs/architecture.md, "faust").
No label carries a key or a value of a record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from faust.sensors import Sensor

from services.observability.linker_metrics import LinkerMetrics

log = logging.getLogger("regsosek.linker")

#: The partitions of the submissions topic the instance owns (read after a rebalance).
Owned = Callable[[], Collection[int]]


class KafkaClientSensor(Sensor):
    """Counts the consumer's commits and rebalances on the linker's registry."""

    def __init__(self, metrics: LinkerMetrics, owned: Owned, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._m = metrics
        self._owned = owned

    def on_commit_initiated(self, consumer: Any) -> float:
        return time.monotonic()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self._m.offset_commits.inc()
        if isinstance(state, float):
            self._m.offset_commit_duration.observe(time.monotonic() - state)

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        return {"time_start": time.monotonic()}

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        self._m.rebalances.inc()
        started = state.get("time_start")
        if isinstance(started, float):
            self._m.rebalance_duration.observe(time.monotonic() - started)
        try:
            self._m.assigned_partitions.set(len(self._owned()))
        except Exception:  # metrics must never stop the worker; the gauge keeps its last value
            log.warning("could not read the assignment after a rebalance")
