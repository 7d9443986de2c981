"""Stream a world's submissions at a fixed rate, straight into Kafka or through the gateway's HTTP API.

Used by `python -m tools simulate` (and the demo) to play the part of thousands of CAPI devices. Submissions are
sent in file order at `rate` per second for `duration` seconds (or until the file ends), with at most
`concurrency` in flight; every outcome is counted by label ("accepted", an HTTP status, or a broker error).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from contracts.family import FamilyKey
from services.gateway.producer import BrokerUnavailable, KafkaSubmissionProducer, MessageTooLarge
from tools.http_client import HttpProtocolError, KeepAlivePoster

ACCEPTED = "accepted"
SUBMISSIONS_FILE = "submissions.jsonl"


class SubmissionSender(Protocol):
    """Sends one submission and says what became of it (ACCEPTED or a rejection label)."""

    async def send(self, key: bytes, value: bytes) -> str:
        """Send; never raise for a rejection, return its label instead."""

    async def close(self) -> None:
        """Release connections."""


class KafkaSender:
    """Produces straight to the submissions topic (acks=all), keyed by family key."""

    def __init__(self, bootstrap: str, topic: str, *, timeout_s: float = 10.0) -> None:
        self._producer = KafkaSubmissionProducer(bootstrap, topic, timeout_s=timeout_s, client_id="regsosek-simulate")

    async def send(self, key: bytes, value: bytes) -> str:
        try:
            await self._producer.produce(key, value)
        except BrokerUnavailable:
            return "broker_unavailable"
        except MessageTooLarge:
            return "too_large"
        return ACCEPTED

    async def close(self) -> None:
        await self._producer.stop()


class GatewaySender:
    """Posts to the gateway's `/v1/submissions` with a team's bearer token, over keep-alive connections."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._poster = KeepAlivePoster(base_url.rstrip("/") + "/v1/submissions", headers)

    async def send(self, key: bytes, value: bytes) -> str:
        try:
            async with asyncio.timeout(self._timeout_s):
                status = await self._poster.post(value)
        except TimeoutError:
            return "timeout"
        except (OSError, asyncio.IncompleteReadError, HttpProtocolError):
            return "connection_error"
        return ACCEPTED if status == 202 else str(status)

    async def close(self) -> None:
        await self._poster.close()


@dataclass
class SimulationReport:
    """What a run did: counts by outcome, wall time and per-submission latencies (seconds)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def accepted(self) -> int:
        return self.outcomes[ACCEPTED]

    @property
    def rejected(self) -> dict[str, int]:
        """Rejections by label (HTTP status or broker error), most frequent first."""
        return {label: n for label, n in self.outcomes.most_common() if label != ACCEPTED}

    def latency_percentile(self, q: float) -> float | None:
        """The q-quantile (0..1) of the send-to-acknowledgement latency, nearest rank."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def read_submissions(world: Path) -> Iterator[bytes]:
    """The lines of `<world>/submissions.jsonl` as bytes, blank lines skipped."""
    with open(world / SUBMISSIONS_FILE, "rb") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield line


def family_key_of(line: bytes) -> bytes | None:
    """The 22-digit family key of a submission line (its Kafka key), None when it cannot be read."""
    try:
        return FamilyKey.model_validate(json.loads(line)["family_key"]).key.encode("ascii")
    except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
        return None


def planned_count(rate: float, duration_s: float) -> int:
    """How many submissions `rate` per second over `duration_s` seconds amount to."""
    return max(0, math.ceil(rate * duration_s - 1e-9))


async def simulate(
    lines: Iterable[bytes],
    sender: SubmissionSender,
    *,
    rate: float,
    duration_s: float,
    concurrency: int = 32,
    on_outcome: Callable[[SimulationReport], None] | None = None,
) -> SimulationReport:
    """Send `lines` paced at `rate`/s for `duration_s` s; returns once every send has an outcome."""
    report = SimulationReport()
    limit = planned_count(rate, duration_s)
    slots = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()

    async def one(key: bytes, value: bytes) -> None:
        started = time.monotonic()
        try:
            outcome = await sender.send(key, value)
        finally:
            slots.release()
        report.latencies_s.append(time.monotonic() - started)
        report.outcomes[outcome] += 1
        if on_outcome is not None:
            on_outcome(report)

    t0 = time.monotonic()
    for index, line in enumerate(lines):
        if index >= limit:
            break
        key = family_key_of(line)
        if key is None:
            report.unreadable += 1
            continue
        # Pace against the schedule, not the previous send, so slow sends do not lower the offered rate.
        delay = t0 + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one(key, line))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    report.elapsed_s = time.monotonic() - t0
    return report
