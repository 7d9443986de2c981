"""The publisher's consumer lag on the REAL broker: end offset minus the group's position, per partition."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from contracts.linkage_outputs import to_canonical_json
from integration.pseudonyms import KeyRing
from services.kafka.io import JsonProducer
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from services.publisher.loop import LoopConfig, PublisherLoop
from services.publisher.metrics import PublisherMetrics
from services.publisher.topics import ensure_subscriber_topics
from tests.support.broker import RunningBroker
from tests.support.publisher import linked_member, private_topics, tagged_registry

pytestmark = [pytest.mark.broker]
RECORDS = 10
NAME = "regsosek_publisher_consumer_lag_messages"


def _lag(registry: CollectorRegistry, topic: str) -> float:
    return sum(s.value for m in registry.collect() if m.name == NAME for s in m.samples if s.labels["topic"] == topic)


def test_publisher_lag_counts_down_to_zero(kafka_broker: RunningBroker, tmp_path: Path) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    topics = private_topics(bootstrap)
    subscriptions, secrets = tagged_registry(tag)
    ensure_subscriber_topics(bootstrap, subscriptions)
    members = [linked_member(serial, nik=None) for serial in range(1, RECORDS + 1)]
    with JsonProducer(bootstrap) as producer:
        producer.send_many(topics.members, [(m.member_key, to_canonical_json(m)) for m in members])
    registry = CollectorRegistry()
    metrics = PublisherMetrics(registry, subscriptions, lag_interval_s=0.0)
    publisher = Publisher(subscriptions, KeyRing(secrets), DisclosureLog(tmp_path / "d.sqlite"), topics=topics)
    loop = PublisherLoop(
        publisher,
        LoopConfig(bootstrap, group_id=f"lag-{tag}", poll_timeout_ms=200, max_poll_records=3),
        metrics=metrics,
    )
    seen: list[tuple[int, float]] = []
    try:
        handled = 0
        for _ in range(200):
            assigned = bool(loop._consumer.assignment())  # noqa: SLF001 - the report needs partitions
            n = loop.run_once()
            if assigned:
                # The lag reported at the start of this round: records not handled by earlier rounds.
                seen.append((handled, _lag(registry, topics.members)))
            handled += n
            if handled == RECORDS and assigned:
                break
        loop.run_once()  # one more report, after the last commit
    finally:
        loop.close()
    assert handled == RECORDS
    assert seen and all(lag == RECORDS - done for done, lag in seen), seen
    assert any(lag > 0 for _, lag in seen)  # the gauge really counted something down
    assert _lag(registry, topics.members) == 0
    labels = {
        (s.labels["topic"], s.labels["partition"]) for m in registry.collect() if m.name == NAME for s in m.samples
    }
    assert labels == {(t, p) for t in topics.all() for p in ("0", "1")}
