"""Streaming submissions at an offered load, and watching the linked member records come back.

`SubmissionStreamer` produces (key, bytes) records at a pace in members per second (or as fast as the
producer can) and remembers when each family was sent; `OutputWatcher` consumes an output topic and
turns each record into an end-to-end latency (sent -> consumed, one clock, one process). Both run in
threads of the caller, so a progress display or a test can watch them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from contracts.partitioning import producer_partitioner
from services.kafka.clients import reader


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class SubmissionStreamer(threading.Thread):
    """Produces `records` (acks=all) at `rate` members/s (None: as fast as possible).

    Partitioned as the gateway does (`contracts.partitioning`: by the family key's district).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        members: Sequence[int],
        *,
        rate: float | None = None,
    ) -> None:
        super().__init__(name="submission-streamer", daemon=True)
        self._servers, self._topic = bootstrap, topic
        self._records, self._members, self._rate = records, members, rate
        self.sent_at: dict[bytes, float] = {}  # family key -> wall time of its latest send
        self.sent_records = 0
        self.sent_members = 0
        self.started_at = 0.0
        self.finished_at = 0.0
        self.error: str | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop producing after the current record."""
        self._stop_event.set()

    def run(self) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self._servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            # Survive a broker restart: a buffered record is retried until the broker is back.
            delivery_timeout_ms=180_000,
            request_timeout_ms=30_000,
            max_block_ms=180_000,
            client_id="regsosek-streamer",
            partitioner=producer_partitioner,
        )
        try:
            self.started_at = time.time()
            for (key, value), n in zip(self._records, self._members, strict=True):
                if self._stop_event.is_set():
                    break
                if self._rate is not None:
                    # Pace by cumulative members, so a slow moment is caught up rather than lost.
                    delay = self.started_at + self.sent_members / self._rate - time.time()
                    if delay > 0:
                        time.sleep(delay)
                if key is not None:
                    self.sent_at[key] = time.time()
                producer.send(self._topic, key=key, value=value)
                self.sent_records += 1
                self.sent_members += n
            producer.flush(timeout=180)
            self.finished_at = time.time()
        except KafkaError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            producer.close(timeout=30)


@dataclass
class WatchFigures:
    """What an `OutputWatcher` saw."""

    records: int
    members: int
    distinct: int
    first_at: float
    last_at: float
    latencies_ms: list[float]


class OutputWatcher(threading.Thread):
    """Consumes `topic` from the beginning; each record's latency is measured from its family's send.

    `members_per_record`: None when every record is one member (keys `<family key>-<serial>`), else a
    map family key -> members, for a pass-through topic that carries whole submissions. Records of
    families the streamer did not send are ignored; `from_end` skips what the topic already holds.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        streamer: SubmissionStreamer,
        *,
        members_per_record: dict[bytes, int] | None = None,
        from_end: bool = False,
    ) -> None:
        super().__init__(name="output-watcher", daemon=True)
        self._from_end = from_end
        self._servers, self._topic, self._streamer = bootstrap, topic, streamer
        self._per_record = members_per_record
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._keys: set[bytes] = set()
        self._records = 0
        self._members = 0
        self._first = 0.0
        self._last = 0.0
        self._latencies: list[float] = []
        self.ready = threading.Event()
        # Latency is measured from max(sent, not_before): a backlog built while the service was paused
        # counts from the moment it could first be processed.
        self.not_before = 0.0

    def stop(self) -> None:
        self._stop_event.set()

    def figures(self) -> WatchFigures:
        """A consistent snapshot."""
        with self._lock:
            return WatchFigures(
                self._records, self._members, len(self._keys), self._first, self._last, list(self._latencies)
            )

    def run(self) -> None:
        consumer = reader(self._servers, client_id="regsosek-watcher", fetch_max_wait_ms=20)
        try:
            partitions = consumer.partitions_for_topic(self._topic) or set()
            assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            if self._from_end:
                consumer.seek_to_end(*assigned)
                for tp in assigned:  # resolve the end offsets now, before anything new is produced
                    consumer.position(tp)
            else:
                consumer.seek_to_beginning(*assigned)
            self.ready.set()
            sent_at = self._streamer.sent_at
            while not self._stop_event.is_set():
                batches = consumer.poll(timeout_ms=100)
                now = time.time()
                with self._lock:
                    for batch in batches.values():
                        for r in batch:
                            if r.key is None or r.value is None:
                                continue
                            family = r.key[:22]
                            sent = sent_at.get(family)
                            if sent is None:  # not streamed by this streamer (an earlier run or phase)
                                continue
                            self._latencies.append((now - max(sent, self.not_before)) * 1000.0)
                            self._records += 1
                            self._members += 1 if self._per_record is None else self._per_record.get(r.key, 0)
                            self._keys.add(r.key)
                            self._first = self._first or now
                            self._last = now
        finally:
            self.ready.set()
            consumer.close()
