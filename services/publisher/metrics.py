"""Prometheus metrics of the publisher, on an injected registry (never the process-global one).

Labels are bounded: the subscriber id (from the registry, a handful of ministries), the event type and
the record outcome (enums). Never a person, NIK, KK, reference or message id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from contracts.subscriptions import EventType, SubscriptionRegistry
from services.observability.consumer_lag import ConsumerLag

OUTCOMES = ("consumed", "unchanged", "undecodable")


class PublisherMetrics:
    """Counters of notifications per subscriber and event, input outcomes, and batch durations."""

    def __init__(
        self, registry: CollectorRegistry, subscriptions: SubscriptionRegistry, *, lag_interval_s: float = 5.0
    ) -> None:
        self.registry = registry
        self.notifications = Counter(
            "regsosek_publisher_notifications",
            "Notifications acknowledged by the broker and logged.",
            ["subscriber", "event_type"],
            registry=registry,
        )
        self.records = Counter(
            "regsosek_publisher_records", "Linkage records read, by outcome.", ["outcome"], registry=registry
        )
        self.batch_seconds = Histogram(
            "regsosek_publisher_batch_seconds",
            "Time from poll to offset commit of one batch.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        # Lag of the publisher's group on the linkage topics (topic/partition labels only).
        self.lag = ConsumerLag(registry, "regsosek_publisher_consumer_lag_messages", interval_s=lag_interval_s)
        # Pre-initialise every label combination so dashboards see zeros, not gaps.
        for sub in subscriptions.subscriptions:
            for event in EventType:
                self.notifications.labels(sub.subscriber_id, event.value)
        for outcome in OUTCOMES:
            self.records.labels(outcome)

    def batch(
        self, *, consumed: int, unchanged: int, undecodable: int, seconds: float, sent: list[tuple[str, str]]
    ) -> None:
        """Record one committed batch; `sent` holds (subscriber, event type) per notification."""
        self.records.labels("consumed").inc(consumed)
        self.records.labels("unchanged").inc(unchanged)
        self.records.labels("undecodable").inc(undecodable)
        for subscriber, event in sent:
            self.notifications.labels(subscriber, event).inc()
        self.batch_seconds.observe(seconds)
