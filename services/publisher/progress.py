"""The publisher's periodic progress line (INFO): counts, rates and lag only, never keys, values or ids.

Every `interval_s` seconds or `every_records` input records, whichever comes first, the loop logs one
line such as

    publisher progress: 12000 records read (+2000, 66.7/s); 3105 notifications sent (+510, 17.0/s) to
    2 subscribers: kemenkes 1200 (+200), kemensos 1905 (+310); 40 unchanged, 1 undecodable; lag 150

(one line in the log). Subscriber ids are the registry's organisation ids, not personal data. The lag
is the input records not yet read over the assigned partitions (end offset minus position), or `?`
when the broker did not answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.kafka.errors import KafkaError

log = logging.getLogger("services.publisher")


@dataclass(frozen=True)
class ProgressSnapshot:
    """The publisher's counters at one moment (monotonic seconds)."""

    at: float
    records: int = 0
    unchanged: int = 0
    undecodable: int = 0
    sent: Mapping[str, int] = field(default_factory=dict)  # notifications by subscriber id, since start
    lag: int | None = None


def _rate(delta: int, seconds: float) -> str:
    return f"{delta / seconds:.1f}/s" if seconds > 0 else "-/s"


def progress_line(previous: ProgressSnapshot, now: ProgressSnapshot) -> str:
    """One log line from two snapshots: totals, the change since `previous` and its rate, and the lag."""
    seconds = now.at - previous.at
    read = now.records - previous.records
    total_sent = sum(now.sent.values())
    new_sent = total_sent - sum(previous.sent.values())
    per_subscriber = ", ".join(
        f"{sid} {count} (+{count - previous.sent.get(sid, 0)})" for sid, count in sorted(now.sent.items())
    )
    subscribers = f" to {len(now.sent)} subscribers: {per_subscriber}" if now.sent else ""
    lag = "?" if now.lag is None else str(now.lag)
    return (
        f"publisher progress: {now.records} records read (+{read}, {_rate(read, seconds)}); "
        f"{total_sent} notifications sent (+{new_sent}, {_rate(new_sent, seconds)}){subscribers}; "
        f"{now.unchanged} unchanged, {now.undecodable} undecodable; lag {lag}"
    )


def total_lag(consumer: Any) -> int | None:
    """Input records not yet read over the consumer's assigned partitions; None if unknown."""
    if not hasattr(consumer, "end_offsets"):  # test fakes of the consumer port may lack it
        return None
    try:
        assigned = list(consumer.assignment())
        if not assigned:
            return None
        ends = consumer.end_offsets(assigned)
        positions = {tp: consumer.position(tp) for tp in assigned}
    except (KafkaError, OSError):
        return None
    return sum(max(0, int(ends[tp]) - int(pos)) for tp, pos in positions.items() if pos is not None and tp in ends)


class ProgressReporter:
    """Decides when a progress line is due and emits it (default: the publisher's logger at INFO)."""

    def __init__(
        self,
        *,
        interval_s: float = 30.0,
        every_records: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.every_records = every_records
        self._clock = clock
        self._emit = emit or log.info
        self._last = ProgressSnapshot(at=clock())

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0 or self.every_records > 0

    def due(self, records: int) -> bool:
        """True when `interval_s` passed or `every_records` were read since the last line (0 disables each)."""
        by_time = self.interval_s > 0 and self._clock() - self._last.at >= self.interval_s
        by_count = self.every_records > 0 and records - self._last.records >= self.every_records
        return by_time or by_count

    def report(self, records: int, snapshot: Callable[[float], ProgressSnapshot], *, force: bool = False) -> str | None:
        """Emit a line when due for `records` read so far (or `force`); only then is `snapshot(at)` taken
        (the lag costs a broker request). Returns the line emitted, if any."""
        if not force and not self.due(records):
            return None
        current = snapshot(self._clock())
        line = progress_line(self._last, current)
        self._last = current
        self._emit(line)
        return line
