"""The publisher against the REAL broker: linkage outputs in, per-subscriber notification topics out.

Each test reads private copies of the linkage topics and writes to subscriber topics with unique ids,
so no other test's records reach it and the expected notifications are exact.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from contracts import events as ce
from contracts.linkage_outputs import to_canonical_json
from contracts.subscriptions import EventType
from integration.pseudonyms import KeyRing
from services.kafka.events import cloud_event_headers, timestamp_ms
from services.kafka.io import JsonProducer, read_topic
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from services.publisher.topics import ensure_subscriber_topics
from tests.support.broker import RunningBroker
from tests.support.publisher import (
    envelopes_of,
    integrated_family,
    linked_member,
    private_topics,
    run_publisher,
    tagged_registry,
)

pytestmark = [pytest.mark.broker]

NIK_1, NIK_2, NIK_3 = "3603121505800002", "3603125505850003", "3603120101900004"
KK = "3603121705150003"


def test_publisher_end_to_end_with_corrections_and_replay(kafka_broker: RunningBroker, tmp_path: Path) -> None:
    bootstrap = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    topics = private_topics(bootstrap)
    registry, secrets = tagged_registry(tag)
    created = ensure_subscriber_topics(bootstrap, registry)
    assert sorted(created) == sorted(s.topic for s in registry.subscriptions)
    assert ensure_subscriber_topics(bootstrap, registry) == []
    sos, kes, dik = registry.subscriptions
    keys = KeyRing(secrets)

    m1 = linked_member(1, nik=NIK_1, dtks_id="DTKS-1", bpjs_id="0001234567890")
    m2 = linked_member(2, nik=None)
    family = integrated_family([m1, m2], kk_number=KK)
    with JsonProducer(bootstrap) as producer:
        producer.send_many(topics.members, [(m.member_key, to_canonical_json(m)) for m in (m1, m2)])
        producer.send(topics.families, family.family_key, to_canonical_json(family))
    log = DisclosureLog(tmp_path / "a.sqlite")
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}-a") == 3

    got = {s.subscriber_id: envelopes_of(bootstrap, s.topic) for s in registry.subscriptions}
    # kemensos: both persons and the family, with raw NIK/KK; kemenkes: only the BPJS member, no NIK;
    # kemendikbud: only the family, pseudonymous member refs.
    # (Two partitions: the order across references is not defined, so compare sorted.)
    assert sorted((e.event_type.value, e.record_type.value) for _, e in got[sos.subscriber_id]) == [
        ("family_new", "family"),
        ("link_created", "person"),
        ("person_new", "person"),
    ]
    by_ref = {e.reference_id: e for _, e in got[sos.subscriber_id]}
    person1 = by_ref[keys.for_subscriber(sos.subscriber_id).person(m1.person_id)]
    sos_family_ref = keys.for_subscriber(sos.subscriber_id).family(m1.family_key)  # never the linker's key
    assert person1.record == {
        "nik": NIK_1,
        "family_key": sos_family_ref,
        "decision": "linked",
        "in_dtks": True,
        "dtks_id": "DTKS-1",
        "regency_code": "3603",
    }
    fam_sos = by_ref[keys.for_subscriber(sos.subscriber_id).family(family.family_key)]
    assert fam_sos.record["kk_number"] == KK
    ((key, kes_env),) = got[kes.subscriber_id]
    # CloudEvents headers: the notification's message_id and timestamp (the member record's time), and that
    # time as the record's own timestamp
    (kes_raw,) = read_topic(bootstrap, kes.topic)
    (m1_raw,) = [r for r in read_topic(bootstrap, topics.members) if r.key == m1.member_key.encode()]
    assert kes_raw.headers == tuple(
        cloud_event_headers(
            ce.NOTIFICATION,
            source="urn:regsosek:service:publisher",
            topic=kes.topic,
            key=kes_raw.key,
            value=kes_raw.value,
            time=kes_env.timestamp,
            id=kes_env.message_id,
        )
    )
    assert kes_raw.timestamp_ms == m1_raw.timestamp_ms == timestamp_ms(kes_env.timestamp)
    assert kes_env.reference_id == keys.for_subscriber(kes.subscriber_id).person(m1.person_id)
    assert key == keys.for_subscriber(kes.subscriber_id).member(m1.member_key)
    assert kes_env.record == {"decision": "linked", "in_bpjs": True, "bpjs_id": "0001234567890", "province_code": "36"}
    ((_, dik_env),) = got[dik.subscriber_id]
    assert set(dik_env.record) == {"regency_code", "member_count", "members"}
    for sid in (kes.subscriber_id, dik.subscriber_id):
        raw = b"".join(r.value or b"" for r in read_topic(bootstrap, registry.get(sid).topic))  # type: ignore[union-attr]
        assert NIK_1.encode() not in raw and KK.encode() not in raw and m1.person_id.encode() not in raw
    assert log.count() == 5

    # The link of member 1 changes (revision 2): kemensos and kemenkes get a correction superseding it.
    m1b = linked_member(1, nik=NIK_3, revision=2, bpjs_id="0001234567899")
    with JsonProducer(bootstrap) as producer:
        producer.send(topics.members, m1b.member_key, to_canonical_json(m1b))
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}-a") == 1
    for sub, first in ((sos, person1), (kes, kes_env)):
        # Same slot key as the first notification: same partition, so it really is the last one there.
        last = [
            e
            for k, e in envelopes_of(bootstrap, sub.topic)
            if k == keys.for_subscriber(sub.subscriber_id).member(m1.member_key)
        ][-1]
        assert last.message_id != first.message_id
        assert (last.event_type, last.correction, last.supersedes) == (EventType.LINK_CHANGED, True, first.message_id)
    assert log.count() == 7
    sent_ids = {e.message_id for s in registry.subscriptions for _, e in envelopes_of(bootstrap, s.topic)}
    assert {d.message_id for d in log.query()} == sent_ids

    # Replay from the beginning with the same disclosure log (a new consumer group): nothing is re-sent.
    assert run_publisher(bootstrap, Publisher(registry, keys, log, topics=topics), f"g-{tag}-b") == 4
    assert sum(len(envelopes_of(bootstrap, s.topic)) for s in registry.subscriptions) == 7
    # A fresh publisher (lost state) re-derives the very same message ids: consumers dedupe on them.
    fresh = DisclosureLog(tmp_path / "b.sqlite")
    assert run_publisher(bootstrap, Publisher(registry, keys, fresh, topics=topics), f"g-{tag}-c") == 4
    again = [e for s in registry.subscriptions for _, e in envelopes_of(bootstrap, s.topic)]
    assert len(again) == 14 and {e.message_id for e in again} == sent_ids
    assert {d.message_id for d in fresh.query()} == sent_ids
