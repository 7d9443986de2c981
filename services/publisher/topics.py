"""Subscriber notification topics: one per subscription, created from the registry.

They are not in the static catalogue (`contracts.topics`) because the registry decides which exist.
Keyed by the subscriber's pseudonymous reference id, so one record's notifications stay in order.
"""

from __future__ import annotations

from typing import Any

from contracts.subscriptions import SubscriptionRegistry
from services.kafka.topics import create_missing

PARTITIONS = 2
RETENTION_MS = 30 * 24 * 60 * 60 * 1000  # subscribers must consume within 30 days (retention limit)


def ensure_subscriber_topics(bootstrap: str, registry: SubscriptionRegistry, **security: Any) -> list[str]:
    """Create the missing `subscriber.<id>.notifications.v1` topics; returns the names created."""
    return create_missing(
        bootstrap,
        [s.topic for s in registry.subscriptions],
        partitions=PARTITIONS,
        configs={"retention.ms": str(RETENTION_MS)},
        client_id="regsosek-subscriber-topics",
        **security,
    )
