"""Link updates through the REAL broker: each update kind (decile changes included) reaches the subscribers of
its event type.

Private copies of the linkage topics and tagged subscriber ids (helpers of `test_publisher`), so the
expected notifications per subscriber topic are exact.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from contracts.linkage_outputs import LinkedMember, SectoralMatches, to_canonical_json
from contracts.linkage_updates import UpdateEventType as U
from contracts.subscriptions import EventType, Subscription, SubscriptionRegistry
from integration.pseudonyms import KeyRing
from services.kafka.io import JsonProducer, read_topic
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from services.publisher.topics import ensure_subscriber_topics
from tests.support.broker import RunningBroker
from tests.support.publisher import VALID_FROM, envelopes_of, linked_member, private_topics, run_publisher, update_event

pytestmark = [pytest.mark.broker]

NIKS = ("3603121505800002", "3603125505850003", "3603120101900004", "3603120202900005", "3603120303900006")
E = EventType


def _sub(subscriber_id: str, *events: EventType) -> Subscription:
    return Subscription(
        subscriber_id=subscriber_id,
        purpose_code="TEST-UPDATES",
        purpose_text="Integration test of update notifications",
        event_types=events,
        person_fields=("decision", "regency_code"),
        valid_from=VALID_FROM,
    )


def test_update_kinds_reach_the_subscribers_of_their_event_types(kafka_broker: RunningBroker, tmp_path: Path) -> None:
    bootstrap = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    topics = private_topics(bootstrap)
    dinsos, bappenas, watch = f"dinsos-{tag}", f"bappenas-{tag}", f"watch-{tag}"
    registry = SubscriptionRegistry(
        subscriptions=(
            _sub(dinsos, E.PERSON_NEW, E.LINK_CREATED, E.LINK_CHANGED, E.DEATH, E.MOVE, E.LINK_MERGED, E.LINK_SPLIT),
            _sub(bappenas, E.PERSON_NEW, E.LINK_CREATED),
            _sub(watch, E.LINK_MERGED, E.LINK_SPLIT),
        )
    )
    keys = KeyRing({s.subscriber_id: uuid.uuid4().hex.encode() * 2 for s in registry.subscriptions})
    ensure_subscriber_topics(bootstrap, registry)
    log = DisclosureLog(tmp_path / "disclosures.sqlite")

    # m1 linked (dies, then moves), m2 not linked (a born record links it), m3 linked (the link breaks),
    # m4 linked (re-linked to another master person).
    m1, m2, m3, m4 = (
        linked_member(1, nik=NIKS[0]),
        linked_member(2, nik=None),
        linked_member(3, nik=NIKS[2]),
        linked_member(4, nik=NIKS[3]),
    )
    with JsonProducer(bootstrap) as producer:
        producer.send_many(topics.members, [(m.member_key, to_canonical_json(m)) for m in (m1, m2, m3, m4)])
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}") == 4

    m2_linked, m3_broken, m4_other = (
        linked_member(2, nik=NIKS[1]),
        linked_member(3, nik=None),
        linked_member(4, nik=NIKS[4]),
    )
    updates = [
        update_event(U.PERSON_DIED, m1, m1, "c-died"),
        update_event(U.MOVED, m1, m1, "c-moved"),
        update_event(U.LINK_CREATED, m2, m2_linked, "c-born"),
        update_event(U.MERGED, m2, m2_linked, "c-born"),
        update_event(U.SPLIT, m3, m3_broken, "c-fix"),
        update_event(U.LINK_CHANGED, m4, m4_other, "c-fix2"),
    ]
    with JsonProducer(bootstrap) as producer:
        producer.send_many(topics.updates, [(u.member_key, to_canonical_json(u)) for u in updates])
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}") == 6

    def ref(sid: str, person_id: str) -> str:
        return keys.for_subscriber(sid).person(person_id)

    def got(sid: str) -> list[tuple[str, str, str | None, bool]]:
        return sorted(
            (e.event_type.value, e.reference_id, e.previous_reference_id, e.correction)
            for _, e in envelopes_of(bootstrap, registry.get(sid).topic)
        )  # type: ignore[union-attr]

    d, b, w = dinsos, bappenas, watch
    assert got(d) == sorted(
        [
            ("link_created", ref(d, m1.person_id), None, False),
            ("person_new", ref(d, m2.person_id), None, False),
            ("link_created", ref(d, m3.person_id), None, False),
            ("link_created", ref(d, m4.person_id), None, False),
            ("death", ref(d, m1.person_id), None, False),
            ("move", ref(d, m1.person_id), None, False),
            ("link_created", ref(d, m2_linked.person_id), None, True),
            ("link_merged", ref(d, m2_linked.person_id), ref(d, m2.person_id), False),
            ("link_split", ref(d, m3_broken.person_id), ref(d, m3.person_id), True),
            ("link_changed", ref(d, m4_other.person_id), None, True),
        ]
    )
    # bappenas: no death, move, merge or split; corrections of the persons it had received.
    assert got(b) == sorted(
        [
            ("link_created", ref(b, m1.person_id), None, False),
            ("person_new", ref(b, m2.person_id), None, False),
            ("link_created", ref(b, m3.person_id), None, False),
            ("link_created", ref(b, m4.person_id), None, False),
            ("link_created", ref(b, m2_linked.person_id), None, True),
            ("link_changed", ref(b, m3_broken.person_id), None, True),
            ("link_changed", ref(b, m4_other.person_id), None, True),
        ]
    )
    assert got(w) == sorted(
        [
            ("link_merged", ref(w, m2_linked.person_id), ref(w, m2.person_id), False),
            ("link_split", ref(w, m3_broken.person_id), ref(w, m3.person_id), False),
        ]
    )
    raw = b"".join(r.value or b"" for s in registry.subscriptions for r in read_topic(bootstrap, s.topic))
    for secret in (*NIKS, m1.person_id, m2.person_id, m2_linked.person_id, m3.person_id, m3_broken.person_id):
        assert secret.encode() not in raw
    sent = {e.message_id for s in registry.subscriptions for _, e in envelopes_of(bootstrap, s.topic)}
    assert len(sent) == 19 and {x.message_id for x in log.query()} == sent
    assert [x.event_type for x in log.query(subscriber_id=w, person_id=m2.person_id)] == ["link_merged"]

    # A replay of every input (new consumer group, same log) sends nothing again.
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}-replay") == 10
    assert sum(len(envelopes_of(bootstrap, s.topic)) for s in registry.subscriptions) == 19


def test_decile_changes_reach_only_their_subscribers_with_the_decile_filter(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    topics = private_topics(bootstrap)
    poor, welfare, other = f"poor-{tag}", f"welfare-{tag}", f"other-{tag}"

    def sub(sid: str, events: tuple[EventType, ...], deciles: tuple[int, ...] = ()) -> Subscription:
        return Subscription.model_validate(
            {
                "subscriber_id": sid,
                "purpose_code": "TEST-WELFARE",
                "purpose_text": "Integration test of deciles",
                "event_types": events,
                "person_fields": ("decision", "dtks_decile"),
                "filters": {"deciles": deciles},
                "valid_from": VALID_FROM,
            }
        )

    registry = SubscriptionRegistry(
        subscriptions=(
            sub(poor, (E.DECILE_CHANGE,), deciles=(1, 2, 3, 4)),
            sub(welfare, (E.WELFARE_CHANGE,)),
            sub(other, (E.PERSON_NEW,)),
        )
    )
    keys = KeyRing({s.subscriber_id: uuid.uuid4().hex.encode() * 2 for s in registry.subscriptions})
    ensure_subscriber_topics(bootstrap, registry)
    log = DisclosureLog(tmp_path / "disclosures.sqlite")

    def with_decile(serial: int, decile: int) -> LinkedMember:
        m = linked_member(serial, nik=NIKS[serial - 1], dtks_id=f"DTKS-{serial}")
        return m.model_copy(update={"sectoral": SectoralMatches(dtks_id=f"DTKS-{serial}", dtks_decile=decile)})

    # m1: decile 3 -> 5 (left the poor feed's deciles: it is told); m2: 6 -> 8 (never in 1-4).
    updates = [
        update_event(U.WELFARE_CHANGED, with_decile(1, 3), with_decile(1, 5), "dtks-1"),
        update_event(U.WELFARE_CHANGED, with_decile(2, 6), with_decile(2, 8), "dtks-2"),
    ]
    with JsonProducer(bootstrap) as producer:
        producer.send_many(topics.updates, [(u.member_key, to_canonical_json(u)) for u in updates])
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}") == 2

    def got(sid: str) -> list[tuple[str, str, dict[str, object]]]:
        return sorted(
            (
                (e.event_type.value, e.reference_id, dict(e.record))
                for _, e in envelopes_of(bootstrap, registry.get(sid).topic)
            ),  # type: ignore[union-attr]
            key=lambda t: t[1],
        )

    m1, m2 = with_decile(1, 5), with_decile(2, 8)
    assert got(poor) == [
        ("decile_change", keys.for_subscriber(poor).person(m1.person_id), {"decision": "linked", "dtks_decile": 5})
    ]
    assert got(welfare) == sorted(
        [
            (
                "welfare_change",
                keys.for_subscriber(welfare).person(m.person_id),
                {"decision": "linked", "dtks_decile": d},
            )
            for m, d in ((m1, 5), (m2, 8))
        ],
        key=lambda t: t[1],
    )
    assert got(other) == []
    assert sorted(x.subscriber_id for x in log.query()) == [poor, welfare, welfare]
    # A replay (new consumer group, same log) sends nothing again.
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}-replay") == 2
    assert sum(len(envelopes_of(bootstrap, s.topic)) for s in registry.subscriptions) == 3
