"""Backfill against the REAL broker: a subscriber added after N families were linked first receives
exactly the matching current records (latest revision per key, deleted families left out), marked
snapshot, then a later live change; the disclosure log holds each, write-ahead and `sent`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from contracts.linkage_outputs import to_canonical_json
from contracts.subscriptions import (
    EventType,
    NotificationEnvelope,
    Subscription,
    SubscriptionFilter,
    SubscriptionRegistry,
)
from integration.pseudonyms import KeyRing
from services.kafka.io import read_topic
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher, SourceTopics
from services.publisher.loop import LoopConfig, PublisherLoop
from services.publisher.topics import ensure_subscriber_topics
from tests.support.broker import RunningBroker
from tests.support.publisher import VALID_FROM, integrated_family, linked_member

pytestmark = [pytest.mark.broker]

BANTEN, JABAR = "36030100010001", "32010100010001"  # family key stems: + 5 digits + "001"


def _topics(bootstrap: str, tag: str) -> SourceTopics:
    topics = SourceTopics(f"t-{tag}.members", f"t-{tag}.families", f"t-{tag}.updates")
    compact = {"cleanup.policy": "compact"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-backfill")
    try:
        admin.create_topics(
            [
                NewTopic(topics.members, 2, 1, topic_configs=compact),
                NewTopic(topics.families, 2, 1, topic_configs=compact),
                NewTopic(topics.updates, 2, 1),
            ]
        )
    finally:
        admin.close()
    return topics


def _sub(subscriber_id: str, valid_from: datetime, *, backfill: bool, regions: tuple[str, ...] = ()) -> Subscription:
    return Subscription(
        subscriber_id=subscriber_id,
        purpose_code="BANSOS-TARGETING",
        purpose_text="Targeting of social assistance",
        event_types=(
            EventType.PERSON_NEW,
            EventType.LINK_CREATED,
            EventType.LINK_CHANGED,
            EventType.FAMILY_NEW,
            EventType.MEMBER_ADDED,
        ),
        filters=SubscriptionFilter(region_codes=regions),
        person_fields=("member_key", "decision"),
        family_fields=("family_key", "member_count"),
        valid_from=valid_from,
        backfill=backfill,
    )


def _run(bootstrap: str, publisher: Publisher, group: str, until: Callable[[], bool]) -> PublisherLoop:
    """Backfill, then process live batches until `until()` holds (deadline 60 s)."""
    loop = PublisherLoop(publisher, LoopConfig(bootstrap, group_id=group, poll_timeout_ms=200))
    try:
        loop.backfill()
        deadline = time.monotonic() + 60
        while not until():
            assert time.monotonic() < deadline, "the publisher did not get there within 60 s"
            loop.run_once()
    finally:
        loop.close()
    return loop


def _feed(bootstrap: str, topic: str) -> list[tuple[str, NotificationEnvelope]]:
    return [
        ((r.key or b"").decode(), NotificationEnvelope.model_validate_json(r.value or b""))
        for r in read_topic(bootstrap, topic)
    ]


def test_a_new_subscriber_gets_the_current_state_as_snapshot_then_the_live_feed(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    topics = _topics(bootstrap, tag)
    # 6 families in Banten and 2 in Jawa Barat, 2 members each; then member 2 of Banten family 0 is
    # re-linked (revision 2) and Banten family 5 is deleted (tombstones for the family and its members).
    families = {
        f"{stem}{i:05d}001": [
            linked_member(1, nik=f"{stem[:6]}1505{i:06d}", family_key=f"{stem}{i:05d}001"),
            linked_member(2, nik=None, family_key=f"{stem}{i:05d}001"),
        ]
        for stem, n in ((BANTEN, 6), (JABAR, 2))
        for i in range(n)
    }
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, members in families.items():
        for m in members:
            producer.send(topics.members, key=m.member_key.encode(), value=to_canonical_json(m))
        producer.send(topics.families, key=key.encode(), value=to_canonical_json(integrated_family(members)))
    f0, f5 = f"{BANTEN}00000001", f"{BANTEN}00005001"
    relinked = linked_member(2, nik="3603125505850003", family_key=f0, revision=2)
    producer.send(topics.members, key=relinked.member_key.encode(), value=to_canonical_json(relinked))
    producer.send(topics.families, key=f5.encode(), value=None)
    for m in families[f5]:
        producer.send(topics.members, key=m.member_key.encode(), value=None)
    producer.flush(timeout=30)

    # An existing subscriber has consumed everything (the publisher's group is at the end).
    old = _sub(f"old-{tag}", VALID_FROM, backfill=False)
    secrets = {f"old-{tag}": uuid.uuid4().hex.encode() * 2, f"new-{tag}": uuid.uuid4().hex.encode() * 2}
    keys, log = KeyRing(secrets), DisclosureLog(tmp_path / "disclosures.sqlite")
    group = f"g-{tag}"
    ensure_subscriber_topics(bootstrap, SubscriptionRegistry(subscriptions=(old,)))
    old_sent = 8 + 16 + 1  # every family and member once, plus the re-link
    _run(
        bootstrap,
        Publisher(SubscriptionRegistry(subscriptions=(old,)), keys, log, topics=topics),
        group,
        until=lambda: log.count() >= old_sent,
    )
    assert log.count() == old_sent

    # Then the new subscriber (Banten only) is added, with a backfill.
    added_at = datetime.now(UTC) + timedelta(milliseconds=10)
    new = _sub(f"new-{tag}", added_at, backfill=True, regions=("36",))
    registry = SubscriptionRegistry(subscriptions=(old, new))
    ensure_subscriber_topics(bootstrap, registry)
    loop = _run(bootstrap, Publisher(registry, keys, log, topics=topics), group, until=lambda: True)
    assert loop.backfilled == {new.subscriber_id: 5 + 10}

    ring = keys.for_subscriber(new.subscriber_id)
    current = {k: v for k, v in families.items() if k.startswith(BANTEN) and k != f5}
    feed = _feed(bootstrap, new.topic)
    expected = {(ring.family(k), "family") for k in current} | {
        (ring.member(m.member_key), "person") for ms in current.values() for m in ms
    }
    assert sorted((k, e.record_type.value) for k, e in feed) == sorted(expected)
    assert all(e.snapshot and e.supersedes is None for _, e in feed)
    by_key = {k: e for k, e in feed}
    assert by_key[ring.member(relinked.member_key)].record == {
        "member_key": ring.member(relinked.member_key),
        "decision": "linked",
    }  # revision 2
    assert by_key[ring.family(f0)].record == {"family_key": ring.family(f0), "member_count": 2}
    assert log.count() == old_sent + 15  # the old subscriber got nothing more

    # A later live change: a third member joins Banten family 1.
    while datetime.now(UTC) <= added_at:  # the change must come after the subscription's start
        time.sleep(0.005)
    f1 = f"{BANTEN}00001001"
    newcomer = linked_member(3, nik=None, family_key=f1)
    grown = integrated_family([*families[f1], newcomer], revision=2)
    producer.send(topics.families, key=f1.encode(), value=to_canonical_json(grown))
    producer.flush(timeout=30)
    producer.close()
    loop = _run(
        bootstrap, Publisher(registry, keys, log, topics=topics), group, until=lambda: log.count() >= old_sent + 15 + 2
    )
    assert loop.backfilled == {}  # done once
    assert log.count() == old_sent + 15 + 2  # the live change: to the new and the old subscriber
    feed = _feed(bootstrap, new.topic)
    assert len(feed) == 16
    ((key, live),) = [(k, e) for k, e in feed if not e.snapshot]  # two partitions: no order across keys
    assert (key, live.snapshot, live.event_type, live.record) == (
        ring.family(f1),
        False,
        EventType.MEMBER_ADDED,
        {"family_key": ring.family(f1), "member_count": 3},
    )
    assert live.supersedes == by_key[ring.family(f1)].message_id

    # The disclosure log holds each notification, all sent; the snapshots by their source.
    entries = log.query(subscriber_id=new.subscriber_id)
    assert {d.message_id for d in entries} == {e.message_id for _, e in feed}
    assert set(log.status(d.message_id for d in entries).values()) == {"sent"}
    assert sum(d.source.startswith(f"snapshot:{topics.members}/") for d in entries) == 10
    assert sum(d.source.startswith(f"snapshot:{topics.families}/") for d in entries) == 5
    assert [d.event_type for d in entries if not d.source.startswith("snapshot:")] == ["member_added"]
    assert log.verify().ok
