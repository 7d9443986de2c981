"""Example subscriptions and linkage-output builders for tests, docs and demos (no network, no clock), and
the broker helpers the publisher's integration tests share (private topics, a bounded publisher run).

The three example subscriptions show the range of purposes:
- `kemensos`: social assistance targeting; may receive the raw NIK and KK (legal basis: bansos law).
- `kemenkes`: health insurance (PBI-JK) verification; persons in BPJS only, pseudonymised, no NIK.
- `kemendikbud`: school-age support planning in Banten (province 36); family-level, no identifiers.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from kafka.admin import KafkaAdminClient, NewTopic

from contracts.linkage_outputs import (
    FamilyFlags,
    FamilyMemberRef,
    IntegratedFamily,
    LinkBand,
    LinkedMember,
    MemberDecision,
    PersonIdKind,
    SectoralMatches,
)
from contracts.linkage_updates import (
    LINKAGE_UPDATE_ADAPTER,
    AnyLinkageUpdate,
    ChangeSource,
    UpdateEventType,
    summary_of,
    update_event_id,
)
from contracts.subscriptions import (
    EventType,
    NotificationEnvelope,
    Subscription,
    SubscriptionFilter,
    SubscriptionRegistry,
)
from services.kafka.io import read_topic
from services.publisher.core import Publisher, SourceTopics
from services.publisher.loop import LoopConfig, PublisherLoop

VALID_FROM = datetime(2022, 1, 1, tzinfo=UTC)
FAMILY_KEY = "3603010001000100001001"

#: Development-only pseudonym secrets for the example subscribers (tests generate their own otherwise).
EXAMPLE_SECRETS: dict[str, bytes] = {
    "kemensos": b"test-only-secret-kemensos-0123456789abcdef",
    "kemenkes": b"test-only-secret-kemenkes-0123456789abcdef",
    "kemendikbud": b"test-only-secret-kemendikbud-0123456789abcd",
}


def example_subscriptions() -> list[Subscription]:
    """The three example subscriptions (see the module docstring)."""
    return [
        Subscription(
            subscriber_id="kemensos",
            purpose_code="BANSOS-TARGETING",
            purpose_text="Targeting and verification of social assistance (PKH, Sembako) recipients",
            event_types=(
                EventType.PERSON_NEW,
                EventType.LINK_CREATED,
                EventType.LINK_CHANGED,
                EventType.FAMILY_NEW,
                EventType.MEMBER_ADDED,
                EventType.MEMBER_REMOVED,
                EventType.DEATH,
            ),
            person_fields=("nik", "family_key", "decision", "in_dtks", "dtks_id", "regency_code"),
            family_fields=("kk_number", "family_key", "members", "member_count", "deceased_in_master"),
            may_receive_nik=True,
            valid_from=VALID_FROM,
        ),
        Subscription(
            subscriber_id="kemenkes",
            purpose_code="PBI-JK-VERIFICATION",
            purpose_text="Verification of BPJS Kesehatan PBI-JK contribution assistance eligibility",
            event_types=(EventType.PERSON_NEW, EventType.LINK_CREATED, EventType.LINK_CHANGED),
            filters=SubscriptionFilter(programmes=("bpjs",)),
            person_fields=("decision", "in_bpjs", "bpjs_id", "province_code"),
            valid_from=VALID_FROM,
        ),
        Subscription(
            subscriber_id="kemendikbud",
            purpose_code="PIP-PLANNING",
            purpose_text="Planning of Program Indonesia Pintar school support by region",
            event_types=(EventType.FAMILY_NEW, EventType.MEMBER_ADDED, EventType.MEMBER_REMOVED),
            filters=SubscriptionFilter(region_codes=("36",)),
            family_fields=("regency_code", "member_count", "members"),
            valid_from=VALID_FROM,
        ),
    ]


def example_registry() -> SubscriptionRegistry:
    """A registry holding the three example subscriptions (version 3, as if added one by one)."""
    return SubscriptionRegistry(registry_version=3, subscriptions=tuple(example_subscriptions()))


def linked_member(
    serial: int,
    *,
    nik: str | None,
    family_key: str = FAMILY_KEY,
    revision: int = 1,
    dtks_id: str | None = None,
    bpjs_id: str | None = None,
    person_id: str | None = None,
) -> LinkedMember:
    """A member record as the linker writes it: linked when `nik` is given, otherwise not linked."""
    linked = nik is not None
    return LinkedMember(
        member_key=f"{family_key}-{serial:02d}",
        family_key=family_key,
        serial=serial,
        submission_id=f"S-{family_key[:4]}-r{revision}",
        revision=revision,
        decision=MemberDecision.LINKED if linked else MemberDecision.NOT_LINKED,
        band=LinkBand.AUTO_LINK if linked else LinkBand.NO_MATCH,
        probability=0.99 if linked else 0.01,
        matched_nik=nik,
        person_id=person_id or _person_id(nik, f"{family_key}-{serial:02d}"),
        person_id_kind=PersonIdKind.MASTER if linked else PersonIdKind.MINTED,
        sectoral=SectoralMatches(dtks_id=dtks_id, bpjs_id=bpjs_id),
        model_version="test-model-1",
    )


def _person_id(nik: str | None, member_key: str) -> str:
    # Like the linker's ids: opaque, never containing the NIK (tests scan outputs for NIKs).
    if nik is not None:
        return "p-" + hashlib.sha256(b"master\x00" + nik.encode()).hexdigest()[:24]
    return "u-" + hashlib.sha256(b"minted\x00" + member_key.encode()).hexdigest()[:24]


def integrated_family(
    members: Sequence[LinkedMember],
    *,
    kk_number: str | None = "3603121705150003",
    revision: int = 1,
    deceased: Sequence[int] = (),
) -> IntegratedFamily:
    """The family record of `members` (all in one family)."""
    family_key = members[0].family_key
    return IntegratedFamily(
        family_key=family_key,
        submission_id=f"S-{family_key[:4]}-r{revision}",
        revision=revision,
        kk_number=kk_number,
        master_kk_numbers=[kk_number] if kk_number else [],
        members=[
            FamilyMemberRef(serial=m.serial, member_key=m.member_key, person_id=m.person_id, decision=m.decision)
            for m in members
        ],
        flags=FamilyFlags(
            kk_mismatch=False,
            members_not_in_master=any(m.matched_nik is None for m in members),
            deceased_in_master_present_in_survey=bool(deceased),
        ),
        not_in_master_serials=[m.serial for m in members if m.matched_nik is None],
        deceased_in_master_serials=list(deceased),
        model_version="test-model-1",
    )


#: The population change behind each kind of update event in `update_event` (the linker's rules).
_CAUSE: dict[UpdateEventType, str] = {
    UpdateEventType.LINK_CREATED: "born",
    UpdateEventType.MERGED: "born",
    UpdateEventType.SPLIT: "corrected",
    UpdateEventType.LINK_CHANGED: "corrected",
    UpdateEventType.PERSON_DIED: "died",
    UpdateEventType.MOVED: "moved",
    UpdateEventType.WELFARE_CHANGED: "sectoral_upsert",
}


def update_event(
    event: UpdateEventType, before: LinkedMember, after: LinkedMember, change_id: str = "c-test"
) -> AnyLinkageUpdate:
    """One event on `linkage.updates.v1` about a member's record `before` -> `after` (any event type).

    `merged` / `split` map `before.person_id` to `after.person_id`, as the linker's updates agent does;
    `welfare_changed` carries the DTKS deciles of `before` and `after`.
    """
    doc: dict[str, object] = {
        "event": event.value,
        "event_id": update_event_id(change_id, after.member_key, event),
        "member_key": after.member_key,
        "family_key": after.family_key,
        "cause": {
            "source": (ChangeSource.DTKS if event is UpdateEventType.WELFARE_CHANGED else ChangeSource.DUKCAPIL).value,
            "change": _CAUSE[event],
            "change_id": change_id,
        },
        "before": summary_of(before),
        "after": summary_of(after),
        "member": after,
    }
    if event in (UpdateEventType.MERGED, UpdateEventType.SPLIT):
        doc |= {"old_person_id": before.person_id, "new_person_id": after.person_id}
    if event is UpdateEventType.WELFARE_CHANGED:
        doc |= {"decile_before": before.sectoral.dtks_decile, "decile_after": after.sectoral.dtks_decile}
    return LINKAGE_UPDATE_ADAPTER.validate_python(doc)


def private_topics(bootstrap: str) -> SourceTopics:
    tag = uuid.uuid4().hex[:8]
    topics = SourceTopics(f"t-{tag}.members", f"t-{tag}.families", f"t-{tag}.updates")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-publisher")
    try:
        admin.create_topics([NewTopic(name, 2, 1) for name in topics.all()])
    finally:
        admin.close()
    return topics


def tagged_registry(tag: str) -> tuple[SubscriptionRegistry, dict[str, bytes]]:
    subs = tuple(s.model_copy(update={"subscriber_id": f"{s.subscriber_id}-{tag}"}) for s in example_subscriptions())
    secrets = {s.subscriber_id: uuid.uuid4().hex.encode() * 2 for s in subs}
    return SubscriptionRegistry(registry_version=3, subscriptions=subs), secrets


def envelopes_of(bootstrap: str, topic: str) -> list[tuple[str, NotificationEnvelope]]:
    return [
        ((r.key or b"").decode(), NotificationEnvelope.model_validate_json(r.value or b""))
        for r in read_topic(bootstrap, topic)
    ]


def run_publisher(bootstrap: str, publisher: Publisher, group: str) -> int:
    loop = PublisherLoop(publisher, LoopConfig(bootstrap, group_id=group, poll_timeout_ms=200))
    try:
        return loop.run_until_idle(idle_s=2.0, max_s=60.0)
    finally:
        loop.close()
