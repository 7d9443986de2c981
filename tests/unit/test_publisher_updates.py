"""Link updates (`linkage.updates.v1`) delivered as the subscription event types: death, move,
link created/changed/merged/split; exact envelopes, the disclosure log, deterministic ids, no raw ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from contracts.linkage_outputs import LinkedMember, to_canonical_json
from contracts.linkage_updates import UpdateEventType
from contracts.subscriptions import EventType, NotificationEnvelope, Subscription, SubscriptionRegistry
from contracts.topics import LINKED_MEMBERS, UPDATES
from integration.notifications import UPDATE_EVENT_TYPES
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Notification, Publisher
from tests.support.publisher import VALID_FROM, linked_member, update_event

NIK_1, NIK_2 = "3603121505800002", "3603125505850003"
T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SECRETS = {sid: f"test-only-secret-{sid}-0123456789abcdef".encode() for sid in ("dinsos", "bappenas", "watch")}
RING = KeyRing(SECRETS)
U = UpdateEventType
FIELDS = ("decision", "regency_code")


def _sub(subscriber_id: str, *events: EventType) -> Subscription:
    return Subscription(
        subscriber_id=subscriber_id,
        purpose_code="TEST-PURPOSE",
        purpose_text="A test purpose for update notifications",
        event_types=events,
        person_fields=FIELDS,
        valid_from=VALID_FROM,
    )


#: dinsos: every update kind; bappenas: new persons only; watch: merges and splits only.
REGISTRY = SubscriptionRegistry(
    subscriptions=(
        _sub(
            "dinsos",
            EventType.PERSON_NEW,
            EventType.LINK_CREATED,
            EventType.LINK_CHANGED,
            EventType.DEATH,
            EventType.MOVE,
            EventType.LINK_MERGED,
            EventType.LINK_SPLIT,
        ),
        _sub("bappenas", EventType.PERSON_NEW, EventType.LINK_CREATED),
        _sub("watch", EventType.LINK_MERGED, EventType.LINK_SPLIT),
    )
)


class _Source:
    def __init__(self) -> None:
        self.offset = 0

    def record(self, topic: str, value: BaseModel, key: str) -> KafkaRecord:
        self.offset += 1
        return KafkaRecord(topic, 0, self.offset, key.encode(), to_canonical_json(value), T0)


@pytest.fixture
def log(tmp_path: Path) -> DisclosureLog:
    return DisclosureLog(tmp_path / "disclosures.sqlite")


def _publisher(log: DisclosureLog) -> Publisher:
    return Publisher(REGISTRY, RING, log, clock=lambda: NOW)


def _by_sub(sent: list[Notification]) -> dict[str, NotificationEnvelope]:
    return {n.envelope.subscriber_id: n.envelope for n in sent}


def _expected(sid: str, event: EventType, member: LinkedMember, **extra: object) -> dict[str, object]:
    return {
        "schema_version": "1",
        "timestamp": datetime(2024, 3, 1, tzinfo=UTC),
        "subscriber_id": sid,
        "purpose_code": "TEST-PURPOSE",
        "event_type": event,
        "record_type": "person",
        "reference_id": RING.for_subscriber(sid).person(member.person_id),
        "record": {"decision": member.decision.value, "regency_code": "3603"},
        "supersedes": None,
        "correction": False,
        "previous_reference_id": None,
        **extra,
    }


def _deliver(pub: Publisher, src: _Source, member: LinkedMember) -> dict[str, NotificationEnvelope]:
    sent = pub.handle(src.record(LINKED_MEMBERS, member, member.member_key))
    pub.confirm(sent)
    return _by_sub(sent)


def test_every_update_kind_maps_to_its_subscription_event_type() -> None:
    assert {u.value: e.value for u, e in UPDATE_EVENT_TYPES.items()} == {
        "link_created": "link_created",
        "link_changed": "link_changed",
        "person_died": "death",
        "moved": "move",
        "merged": "link_merged",
        "split": "link_split",
        "welfare_changed": "decile_change",
    }


@pytest.mark.parametrize(("kind", "event"), [(U.PERSON_DIED, EventType.DEATH), (U.MOVED, EventType.MOVE)])
def test_death_and_move_reach_only_their_subscribers(log: DisclosureLog, kind: U, event: EventType) -> None:
    pub, src = _publisher(log), _Source()
    member = linked_member(1, nik=NIK_1)
    first = _deliver(pub, src, member)
    assert sorted(first) == ["bappenas", "dinsos"]
    # The member record is unchanged by a death or a move: the event itself is the news.
    sent = pub.handle(src.record(UPDATES, update_event(kind, member, member), member.member_key))
    ((n,),) = [sent]
    assert n.envelope.model_dump(exclude={"message_id"}) == _expected(
        "dinsos", event, member, supersedes=first["dinsos"].message_id
    )
    assert n.key == RING.for_subscriber("dinsos").member(member.member_key)
    assert n.topic == "subscriber.dinsos.notifications.v1"
    pub.confirm(sent)
    (entry,) = log.query(subscriber_id="dinsos", person_id=member.person_id)[1:]
    assert (entry.message_id, entry.event_type, entry.record_type, entry.fields, entry.source) == (
        n.envelope.message_id,
        event.value,
        "person",
        FIELDS,
        f"{UPDATES}/0/2",
    )
    # Not subscribed to deaths or moves (bappenas, watch): nothing, although bappenas knows the person.
    assert [e.subscriber_id for e in log.query()] == ["dinsos", "bappenas", "dinsos"]


def test_merge_maps_the_old_reference_to_the_new_one_with_own_pseudonyms(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Source()
    minted = linked_member(2, nik=None)
    first = _deliver(pub, src, minted)
    assert {s: e.event_type for s, e in first.items()} == {
        "dinsos": EventType.PERSON_NEW,
        "bappenas": EventType.PERSON_NEW,
    }
    # A `born` record links the member: the linker emits link_created, then merged (minted -> master).
    linked = linked_member(2, nik=NIK_2)
    created = pub.handle(src.record(UPDATES, update_event(U.LINK_CREATED, minted, linked), linked.member_key))
    merged = pub.handle(src.record(UPDATES, update_event(U.MERGED, minted, linked), linked.member_key))
    c, m = _by_sub(created), _by_sub(merged)
    assert c["dinsos"].model_dump(exclude={"message_id"}) == _expected(
        "dinsos", EventType.LINK_CREATED, linked, supersedes=first["dinsos"].message_id, correction=True
    )
    assert m["dinsos"].model_dump(exclude={"message_id"}) == _expected(
        "dinsos",
        EventType.LINK_MERGED,
        linked,
        supersedes=c["dinsos"].message_id,
        previous_reference_id=RING.for_subscriber("dinsos").person(minted.person_id),
    )
    # watch never heard of the member and subscribes to merges only: the mapping without supersedes.
    assert m["watch"].model_dump(exclude={"message_id"}) == _expected(
        "watch",
        EventType.LINK_MERGED,
        linked,
        previous_reference_id=RING.for_subscriber("watch").person(minted.person_id),
    )
    # bappenas subscribes to link_created; it gets no link_merged.
    assert c["bappenas"].event_type is EventType.LINK_CREATED and sorted(m) == ["dinsos", "watch"]
    assert m["dinsos"].previous_reference_id != m["watch"].previous_reference_id  # unlinkable across subscribers
    for n in merged:
        body = n.envelope.model_dump_json()
        assert minted.person_id not in body and linked.person_id not in body and NIK_2 not in body
    pub.confirm(created + merged)
    (entry,) = log.query(subscriber_id="watch")
    assert entry.event_type == "link_merged" and entry.fields == ("decision", "previous_reference_id", "regency_code")
    # The disclosure of the mapping is found under both person ids.
    assert [e.event_type for e in log.query(subscriber_id="watch", person_id=minted.person_id)] == ["link_merged"]
    assert [e.event_type for e in log.query(subscriber_id="watch", person_id=linked.person_id)] == ["link_merged"]


def test_split_maps_the_master_reference_back_to_a_minted_one(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Source()
    linked = linked_member(3, nik=NIK_1)
    first = _deliver(pub, src, linked)
    broken = linked_member(3, nik=None)
    sent = _by_sub(pub.handle(src.record(UPDATES, update_event(U.SPLIT, linked, broken), broken.member_key)))
    assert sent["dinsos"].model_dump(exclude={"message_id"}) == _expected(
        "dinsos",
        EventType.LINK_SPLIT,
        broken,
        supersedes=first["dinsos"].message_id,
        correction=True,
        previous_reference_id=RING.for_subscriber("dinsos").person(linked.person_id),
    )
    assert sent["watch"].previous_reference_id == RING.for_subscriber("watch").person(linked.person_id)
    # bappenas had received the linked person and is not subscribed to splits: only a correction.
    assert (sent["bappenas"].event_type, sent["bappenas"].correction, sent["bappenas"].previous_reference_id) == (
        EventType.LINK_CHANGED,
        True,
        None,
    )
    assert sent["bappenas"].supersedes == first["bappenas"].message_id


def test_link_changed_only_when_the_subscribers_view_changed(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Source()
    member = linked_member(4, nik=NIK_1)
    _deliver(pub, src, member)
    # A sectoral id the subscriber does not see changed: nothing for anyone.
    with_dtks = linked_member(4, nik=NIK_1, dtks_id="D-1")
    same_view = update_event(U.LINK_CHANGED, member, with_dtks, change_id="c-dtks")
    assert pub.handle(src.record(UPDATES, same_view, member.member_key)) == []
    # Re-linked to another master person: a link_changed correction to dinsos (a correction to bappenas).
    other = linked_member(4, nik=NIK_2)
    sent = _by_sub(pub.handle(src.record(UPDATES, update_event(U.LINK_CHANGED, member, other), other.member_key)))
    assert {s: (e.event_type, e.correction) for s, e in sent.items()} == {
        "dinsos": (EventType.LINK_CHANGED, True),
        "bappenas": (EventType.LINK_CHANGED, True),
    }
    assert sent["dinsos"].reference_id == RING.for_subscriber("dinsos").person(other.person_id)


def test_unsubscribed_event_types_send_nothing_to_a_subscriber_that_never_got_the_person(
    log: DisclosureLog,
) -> None:
    only_new = SubscriptionRegistry(subscriptions=(_sub("bappenas", EventType.PERSON_NEW),))
    pub, src = Publisher(only_new, RING, log, clock=lambda: NOW), _Source()
    minted, linked = linked_member(5, nik=None), linked_member(5, nik=NIK_1)
    for kind in U:
        before, after = (linked, minted) if kind is U.SPLIT else (minted, linked)
        assert pub.handle(src.record(UPDATES, update_event(kind, before, after), after.member_key)) == [], kind


def test_update_notifications_are_deterministic_and_never_resent(tmp_path: Path) -> None:
    minted, linked = linked_member(6, nik=None), linked_member(6, nik=NIK_2)
    src = _Source()
    records = [
        src.record(UPDATES, update_event(k, minted, linked), linked.member_key) for k in (U.LINK_CREATED, U.MERGED)
    ]
    died = src.record(UPDATES, update_event(U.PERSON_DIED, linked, linked, change_id="c-died"), linked.member_key)
    runs = []
    for name in ("a", "b"):
        pub = _publisher(DisclosureLog(tmp_path / f"{name}.sqlite"))
        sent = [n for r in (*records, died) for n in pub.handle(r)]
        pub.confirm(sent)
        runs.append([(n.envelope.subscriber_id, n.envelope.event_type, n.envelope.message_id) for n in sent])
        # A replay (redelivery, a new consumer group) with the same log sends nothing again.
        assert [n for r in (*records, died) for n in pub.handle(r)] == []
    assert runs[0] == runs[1]
    assert [(s, e) for s, e, _ in runs[0]] == [
        ("dinsos", EventType.LINK_CREATED),
        ("bappenas", EventType.LINK_CREATED),
        ("dinsos", EventType.LINK_MERGED),
        ("watch", EventType.LINK_MERGED),
        ("dinsos", EventType.DEATH),
    ]


def test_registry_record_types_of_death_and_move() -> None:
    # A death comes as a person record (update event) or a family record; a move only as a person record.
    assert _sub("dinsos", EventType.DEATH, EventType.MOVE).record_types() == {"person"}
    with pytest.raises(ValidationError, match="person events are subscribed but no person_fields"):
        Subscription(
            subscriber_id="dukcapil",
            purpose_code="X1",
            purpose_text="Moves at family level only",
            event_types=(EventType.MOVE,),
            family_fields=("member_count",),
            valid_from=VALID_FROM,
        )


def test_a_replayed_input_never_steps_a_subscriber_back(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Source()
    minted, linked = linked_member(7, nik=None), linked_member(7, nik=NIK_1)
    original = src.record(LINKED_MEMBERS, minted, minted.member_key)
    pub.confirm(pub.handle(original))
    # The update keeps the submission's revision: only the input position tells the original is older.
    pub.confirm(pub.handle(src.record(UPDATES, update_event(U.LINK_CREATED, minted, linked), linked.member_key)))
    assert pub.handle(original) == []
    # After a restart too (positions are kept with the delivery state); a later offset is still handled.
    restarted = _publisher(log)
    assert restarted.handle(original) == []
    later = KafkaRecord(original.topic, 0, 50, original.key, original.value, T0)
    assert {n.envelope.event_type for n in restarted.handle(later)} == {EventType.LINK_CHANGED}
