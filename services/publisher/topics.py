"""Subscriber notification topics: one per subscription, created from the registry.

They are not in the static catalogue (`contracts.topics`) because the registry decides which exist.
Keyed by the subscriber's pseudonymous reference id, so one record's notifications stay in order.
"""

from __future__ import annotations

from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.subscriptions import SubscriptionRegistry

PARTITIONS = 2
RETENTION_MS = 30 * 24 * 60 * 60 * 1000  # subscribers must consume within 30 days (retention limit)


def ensure_subscriber_topics(bootstrap: str, registry: SubscriptionRegistry, **security: Any) -> list[str]:
    """Create the missing `subscriber.<id>.notifications.v1` topics; returns the names created."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="regsosek-subscriber-topics", request_timeout_ms=15000, **security
    )
    try:
        existing = set(admin.list_topics())
        wanted = [s.topic for s in registry.subscriptions if s.topic not in existing]
        created = []
        for name in wanted:
            topic = NewTopic(name, PARTITIONS, 1, topic_configs={"retention.ms": str(RETENTION_MS)})
            try:
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                raise RuntimeError(f"cannot create topic {name}: {exc}") from exc
        return created
    finally:
        admin.close()
