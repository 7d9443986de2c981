"""The publisher's Kafka loop: consume linkage outputs, produce notifications, THEN commit offsets.

kafka-python, a consumer group with manual commits (at-least-once). Per poll batch: decide every
notification (`Publisher.handle`), log every disclosure ahead of the send (`Publisher.log_pending`),
send them all with acks='all' and wait for every acknowledgement, record the acknowledgements and the
delivery state (`Publisher.confirm`), and only then commit the batch's offsets.
Any failure before the commit leaves the offsets where they were: the batch is redelivered and, with
deterministic message ids, subscribers see at most duplicates they can drop by message id.
Both failures are fatal to the loop (`PublishError`, `DisclosureLogError` propagate): in particular a
disclosure log that cannot be written stops the publisher before it sends anything of the batch.

Before the first batch, `run` and `run_until_idle` deliver the backfill of new subscriptions
(`services.publisher.backfill`): their snapshot precedes their live feed.

The consumer and the producer are ports (`ConsumerPort`, `ProducerPort`): kafka-python's clients by
default, fakes in the unit tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contracts import events as ce
from services.kafka.clients import OffsetAndMetadata, TopicPartition, acknowledging_producer, group_consumer
from services.kafka.errors import KafkaError
from services.kafka.events import EventStamper
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import DisclosureLogError
from services.publisher.core import Notification, Publisher
from services.publisher.metrics import PublisherMetrics
from services.publisher.progress import ProgressReporter, ProgressSnapshot, total_lag

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """Notifications could not be delivered; the input offsets were not committed."""


class ConsumerPort(Protocol):
    """What the loop uses of a kafka-python `KafkaConsumer`."""

    def poll(self, timeout_ms: int = ...) -> Mapping[Any, Sequence[Any]]: ...  # noqa: D102
    def commit(self, offsets: Any = ...) -> Any: ...  # noqa: D102
    def assignment(self) -> Any: ...  # noqa: D102
    def close(self) -> Any: ...  # noqa: D102


class ProducerPort(Protocol):
    """What the loop uses of a kafka-python `KafkaProducer`: `send` returns a future with `get`."""

    def send(  # noqa: D102
        self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]], timestamp_ms: int
    ) -> Any: ...
    def flush(self, timeout: float | None = ...) -> Any: ...  # noqa: D102
    def close(self, timeout: float | None = ...) -> Any: ...  # noqa: D102


@dataclass(frozen=True)
class LoopConfig:
    """Connection and polling parameters of one loop."""

    bootstrap: str
    group_id: str = "regsosek-publisher"
    client_id: str = "regsosek-publisher"
    poll_timeout_ms: int = 500
    max_poll_records: int = 500
    timeout_s: float = 30.0
    # A progress line at INFO every this many seconds or input records (services/publisher/progress.py);
    # 0 turns either trigger off.
    progress_interval_s: float = 30.0
    progress_every_records: int = 10_000


def notification_stamp(n: Notification, key: bytes, value: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """(CloudEvents headers, timestamp in ms) of a notification: id = its `message_id`, time = its
    `timestamp` (the linkage record's event time), on whichever subscriber topic (services.kafka.events)."""
    kind = {n.topic: ce.NOTIFICATION}
    return EventStamper(kind, ce.PUBLISHER_SOURCE)(n.topic, key, value, n.envelope.timestamp, id=n.envelope.message_id)


class PublisherLoop:
    """Runs a `Publisher` against the broker until `stop()` (or until idle, in tests and batch runs)."""

    def __init__(
        self,
        publisher: Publisher,
        config: LoopConfig,
        *,
        metrics: PublisherMetrics | None = None,
        consumer: ConsumerPort | None = None,
        producer: ProducerPort | None = None,
        progress: ProgressReporter | None = None,
        **security: Any,
    ) -> None:
        self.publisher = publisher
        self.config = config
        self.metrics = metrics
        self._stop = threading.Event()
        self._security = security
        #: Snapshot notifications sent per subscriber by the last `backfill` (tests and logs read it).
        self.backfilled: dict[str, int] = {}
        #: Notifications acknowledged per subscriber since start, backfill included (progress lines).
        self.sent_by_subscriber: Counter[str] = Counter()
        self.progress = progress or ProgressReporter(
            interval_s=config.progress_interval_s, every_records=config.progress_every_records
        )
        self._consumer: ConsumerPort = consumer or group_consumer(
            config.bootstrap,
            *publisher.topics.all(),
            group_id=config.group_id,
            client_id=config.client_id,
            max_poll_records=config.max_poll_records,
            **security,
        )
        self._producer: ProducerPort = producer or acknowledging_producer(
            config.bootstrap, client_id=config.client_id, timeout_s=config.timeout_s, **security
        )

    def run_once(self) -> int:
        """Poll one batch and process it completely. Returns how many input records it held."""
        # Before the poll the position is the committed offset of the last batch: lag = not yet handled.
        if self.metrics is not None and hasattr(self._consumer, "end_offsets"):  # test fakes may lack it
            self.metrics.lag.maybe_report(self._consumer)  # type: ignore[arg-type]
        batch = self._consumer.poll(timeout_ms=self.config.poll_timeout_ms)
        started = time.monotonic()
        before = (self.publisher.stats.consumed, self.publisher.stats.unchanged, self.publisher.stats.undecodable)
        records = [KafkaRecord.of(r) for tp in sorted(batch, key=lambda t: (t.topic, t.partition)) for r in batch[tp]]
        if not records:
            self.report_progress()
            return 0
        notifications: list[Notification] = []
        for record in records:
            notifications.extend(self.publisher.handle(record))
        try:
            # Write-ahead: if the log cannot be written, nothing of this batch is sent.
            self.publisher.log_pending(notifications)
            self._send(notifications)
            self.publisher.confirm(notifications)
        except (PublishError, DisclosureLogError):
            # Offsets stay uncommitted: the batch comes again after the restart, with the same ids.
            self.publisher.abandon()
            raise
        offsets = {
            TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(rs[-1].offset + 1, "", -1)
            for tp, rs in batch.items()
            if rs
        }
        self._consumer.commit(offsets)
        self.sent_by_subscriber.update(n.envelope.subscriber_id for n in notifications)
        if self.metrics is not None:
            stats = self.publisher.stats
            self.metrics.batch(
                consumed=stats.consumed - before[0],
                unchanged=stats.unchanged - before[1],
                undecodable=stats.undecodable - before[2],
                seconds=time.monotonic() - started,
                sent=[(n.envelope.subscriber_id, n.envelope.event_type.value) for n in notifications],
            )
        # Counts only: never keys, values or ids (they identify people).
        log.debug("publisher batch: %d records in, %d notifications out", len(records), len(notifications))
        self.report_progress()
        return len(records)

    def snapshot(self, at: float) -> ProgressSnapshot:
        """The counters for a progress line (the lag is one end-offsets request to the broker)."""
        stats = self.publisher.stats
        return ProgressSnapshot(
            at=at,
            records=stats.consumed,
            unchanged=stats.unchanged,
            undecodable=stats.undecodable,
            sent=dict(self.sent_by_subscriber),
            lag=total_lag(self._consumer),
        )

    def report_progress(self, *, force: bool = False) -> str | None:
        """Log the progress line when it is due (or `force`); returns it."""
        if not self.progress.enabled and not force:
            return None
        return self.progress.report(self.publisher.stats.consumed, self.snapshot, force=force)

    def _send(self, notifications: list[Notification]) -> None:
        futures = []
        try:
            for n in notifications:
                key, value = n.key.encode(), n.envelope.model_dump_json().encode()
                headers, ts = notification_stamp(n, key, value)
                futures.append(self._producer.send(n.topic, key=key, value=value, headers=headers, timestamp_ms=ts))
            self._producer.flush(timeout=self.config.timeout_s)
            for future in futures:
                future.get(timeout=self.config.timeout_s)
        except KafkaError as exc:
            raise PublishError(f"the broker did not acknowledge the notifications: {type(exc).__name__}") from exc

    def backfill(self, read: Callable[[], list[KafkaRecord]] | None = None) -> dict[str, int]:
        """Deliver the snapshot of every new subscription that asks for one (before the live feed).

        `read` supplies the linkage records (default: the members and families topics of the broker up to
        their current end offsets). Raises `PublishError` / `DisclosureLogError` / `BackfillError`.
        """
        from services.publisher.backfill import read_current, run_backfills

        topics = self.publisher.topics
        if read is None:

            def read() -> list[KafkaRecord]:
                return read_current(
                    self.config.bootstrap,
                    (topics.members, topics.families),
                    timeout_s=self.config.timeout_s * 2,
                    **self._security,
                )

        sent: list[tuple[str, str]] = []

        def send(chunk: list[Notification]) -> None:
            self._send(chunk)
            sent.extend((n.envelope.subscriber_id, n.envelope.event_type.value) for n in chunk)

        self.backfilled = run_backfills(self.publisher, send, read, self.publisher.clock)
        self.sent_by_subscriber.update(self.backfilled)
        if self.metrics is not None:
            # Acknowledged and confirmed (run_backfills returned): counted like live notifications.
            for subscriber, event in sent:
                self.metrics.notifications.labels(subscriber, event).inc()
        for subscriber_id, count in self.backfilled.items():
            # Counts only, never the records.
            log.info("publisher backfill: %d snapshot notifications to %s", count, subscriber_id)
        return self.backfilled

    def run(self) -> None:
        """Deliver pending backfills, then process batches until `stop()` is called."""
        self.backfill()
        while not self._stop.is_set():
            self.run_once()
        self.report_progress(force=True)  # the totals of this run, at a clean stop

    def run_until_idle(self, idle_s: float = 2.0, max_s: float = 60.0) -> int:
        """Process until no record arrived for `idle_s` (or `max_s` passed). Returns records processed."""
        self.backfill()
        total, deadline = 0, time.monotonic() + max_s
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < idle_s:
            n = self.run_once()
            total += n
            # The idle clock starts once the group gave us partitions (joining takes a moment).
            if n or not self._consumer.assignment():
                last = time.monotonic()
        return total

    def stop(self) -> None:
        """Ask `run` to return after the current batch."""
        self._stop.set()

    def close(self) -> None:
        """Close the consumer (leaving the group) and the producer."""
        self._consumer.close()
        self._producer.close(timeout=self.config.timeout_s)
