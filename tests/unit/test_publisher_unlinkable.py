"""Two subscribers' feeds about the same people share no identifier value (issue 14, item 7).

Both subscriptions ask for every field except the raw state ids (NIK/KK) and the sectoral programme ids
(given to a programme's own ministry on purpose); the feeds carry persons, families and link updates
(a correction and a merge) about the same members. Every string value of both feeds (records, nested
member lists, reference ids, supersedes/previous references, Kafka keys, message ids) is compared;
only the values of the enumerations and coarse region codes (the same words for everyone) may repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from contracts.linkage_outputs import to_canonical_json
from contracts.linkage_updates import UpdateEventType
from contracts.subscriptions import FAMILY_FIELDS, PERSON_FIELDS, EventType, Subscription, SubscriptionRegistry
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, UPDATES
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Notification, Publisher
from tests.support.publisher import VALID_FROM, integrated_family, linked_member, update_event

NIK_1, NIK_2, NIK_3 = "3603121505800002", "3603125505850003", "3603120101900004"
T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SECRETS = {sid: f"test-only-secret-{sid}-0123456789abcdef".encode() for sid in ("kemensos", "kemenkes")}
#: Fields whose values are vocabulary or coarse regions, equal for everyone by design (not identifiers).
VOCABULARY = {"decision", "band", "model_version", "province_code", "regency_code"}
#: Programme ids: the programme's ministry receives its own id in clear, so they are not asked for here.
PROGRAMME_IDS = {"dtks_id", "bpjs_id"}


def _sub(subscriber_id: str) -> Subscription:
    return Subscription(
        subscriber_id=subscriber_id,
        purpose_code="TEST-PURPOSE",
        purpose_text="Unlinkability of two feeds",
        event_types=tuple(EventType),
        person_fields=tuple(sorted(PERSON_FIELDS - {"nik"} - PROGRAMME_IDS)),
        family_fields=tuple(sorted(FAMILY_FIELDS - {"kk_number"})),
        valid_from=VALID_FROM,
    )


class _Source:
    def __init__(self) -> None:
        self.offset = 0

    def record(self, topic: str, key: str, value: BaseModel) -> KafkaRecord:
        self.offset += 1
        return KafkaRecord(topic, 0, self.offset, key.encode(), to_canonical_json(value), T0)


def _strings(value: object, field: str | None = None) -> set[str]:
    """Every string inside `value`, except the values of vocabulary fields."""
    if field in VOCABULARY:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v, k) for k, v in value.items())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def _feed_strings(sent: list[Notification], subscriber_id: str) -> set[str]:
    out: set[str] = set()
    for n in sent:
        if n.envelope.subscriber_id != subscriber_id:
            continue
        e = n.envelope
        out |= _strings(e.record) | {n.key, e.message_id, e.reference_id}
        out |= {v for v in (e.supersedes, e.previous_reference_id) if v is not None}
    return out


def test_two_feeds_about_the_same_people_share_no_identifier(tmp_path: Path) -> None:
    registry = SubscriptionRegistry(subscriptions=(_sub("kemensos"), _sub("kemenkes")))
    pub = Publisher(registry, KeyRing(SECRETS), DisclosureLog(tmp_path / "d.sqlite"), clock=lambda: NOW)
    src = _Source()
    m1, m2 = linked_member(1, nik=NIK_1), linked_member(2, nik=None)
    sent: list[Notification] = []

    def step(record: KafkaRecord) -> None:
        out = pub.handle(record)
        pub.confirm(out)
        sent.extend(out)

    step(src.record(LINKED_MEMBERS, m1.member_key, m1))
    step(src.record(LINKED_MEMBERS, m2.member_key, m2))
    step(src.record(LINKED_FAMILIES, m1.family_key, integrated_family([m1, m2])))
    # The second member is found in the master (a correction), then merged into another person.
    m2_linked = linked_member(2, nik=NIK_2, revision=2)
    step(src.record(UPDATES, m2.member_key, update_event(UpdateEventType.LINK_CHANGED, m2, m2_linked, "c-1")))
    m2_merged = linked_member(2, nik=NIK_3, revision=3)
    step(src.record(UPDATES, m2.member_key, update_event(UpdateEventType.MERGED, m2_linked, m2_merged, "c-2")))
    step(src.record(LINKED_FAMILIES, m1.family_key, integrated_family([m1, m2_merged], revision=3)))

    sos, kes = _feed_strings(sent, "kemensos"), _feed_strings(sent, "kemenkes")
    # Both feeds got the same events (so the comparison is about the same people and changes).
    kinds = sorted(
        (n.envelope.event_type, n.envelope.record_type) for n in sent if n.envelope.subscriber_id == "kemensos"
    )
    assert kinds == sorted(
        (n.envelope.event_type, n.envelope.record_type) for n in sent if n.envelope.subscriber_id == "kemenkes"
    )
    assert len(kinds) == 6 and any(n.envelope.previous_reference_id for n in sent)
    assert len(sos) > 10 and len(kes) > 10
    assert sos & kes == set()
    # No internal id or linker key reaches either feed in clear.
    internal = {
        m1.member_key,
        m2.member_key,
        m1.family_key,
        m1.person_id,
        m2.person_id,
        m2_linked.person_id,
        m2_merged.person_id,
    }
    assert (sos | kes) & internal == set()


def test_a_subscribers_member_and_family_keys_are_stable_across_updates(tmp_path: Path) -> None:
    registry = SubscriptionRegistry(subscriptions=(_sub("kemensos"),))
    ring = KeyRing(SECRETS)
    pub = Publisher(registry, ring, DisclosureLog(tmp_path / "d.sqlite"), clock=lambda: NOW)
    src = _Source()
    before, after = linked_member(1, nik=None), linked_member(1, nik=NIK_1, revision=2)
    (first,) = pub.handle(src.record(LINKED_MEMBERS, before.member_key, before))
    pub.confirm([first])
    (second,) = pub.handle(
        src.record(UPDATES, after.member_key, update_event(UpdateEventType.LINK_CHANGED, before, after, "c-1"))
    )
    pseudonyms = ring.for_subscriber("kemensos")
    # The person reference changes (a correction), the member slot and family do not: the subscriber
    # upserts on member_key, and the correction supersedes the first notification.
    assert first.envelope.reference_id != second.envelope.reference_id
    assert first.envelope.record["member_key"] == second.envelope.record["member_key"] == first.key == second.key
    assert first.key == pseudonyms.member(before.member_key)
    assert (
        first.envelope.record["family_key"]
        == second.envelope.record["family_key"]
        == pseudonyms.family(before.family_key)
    )
    assert (second.envelope.supersedes, second.envelope.correction) == (first.envelope.message_id, True)
