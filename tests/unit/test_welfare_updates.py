"""The DTKS welfare decile end to end without Kafka: a DTKS row with a new `desil` -> a `welfare_changed`
update (updates agent, fake engine) -> `decile_change` / `welfare_change` notifications (publisher), with
the decile filter rule: a subscriber filtering deciles gets the change when the decile before OR the one
after is in its filter."""

from __future__ import annotations

import datetime as dt
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.decode import decode_family_submission
from contracts.linkage_outputs import LinkedMember, SectoralMatches, to_canonical_json
from contracts.linkage_updates import (
    LINKAGE_UPDATE_ADAPTER,
    ChangeSource,
    UpdateCause,
    UpdateEventType,
    WelfareChanged,
    summary_of,
    update_event_id,
)
from contracts.subscriptions import EventType, NotificationEnvelope, Subscription, SubscriptionRegistry
from contracts.topics import UPDATES
from integration.ids import PersonIds
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.linker.updates.applier import ChangeApplier, UpdateResult, UpdateTopics
from services.linker.updates.changes import Change, classify_change
from services.linker.updates.handler import StoreMemberIndex
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Notification, Publisher
from tests.support.linker import FakeMasterPerson, FakeMemberLinker, member_payload, nik_for, submission_payload
from tests.support.linking import link_batch
from tests.support.publisher import VALID_FROM, linked_member, update_event
from tests.support.updates import dtks_row

IDS = PersonIds(b"test-key")
KK = "3603121705150003"
FAM = "3603010001000100001001"
SITI = nik_for(12, female=True)
TOPICS = UpdateTopics(members="m", review="r", updates="u", families="f")


# ------------------------------------------------------------------------------- the updates agent


def _linked_siti(store: LinkStore) -> FakeMemberLinker:
    fake = FakeMemberLinker.of([FakeMasterPerson(SITI, "Siti Aminah", KK)])
    payload = submission_payload([member_payload(1, "Siti Aminah", SITI, sex=2)], family_key=FAM, kk_number=KK)
    sub = decode_family_submission(json.dumps(payload).encode(), key=FAM.encode())
    store.apply(link_batch(SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r")), store, [sub]).update)
    return fake


def _apply_dtks(store: LinkStore, fake: FakeMemberLinker, value: bytes) -> tuple[Change, UpdateResult]:
    change = classify_change(value, b"k", KafkaRecord("t", 0, 0, None, None, 0), "dtks", max_bytes=10_000)
    assert isinstance(change, Change)
    index = StoreMemberIndex(lambda: {0: store})
    result = ChangeApplier(fake, index, IDS, TOPICS).process([change])
    index.save(result.states.values())
    return change, result


def test_a_new_decile_of_the_same_dtks_row_emits_welfare_changed_and_the_member(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    fake = _linked_siti(store)
    _apply_dtks(store, fake, dtks_row("DTKS-77", SITI, "Siti", desil=3))
    change, result = _apply_dtks(store, fake, dtks_row("DTKS-77", SITI, "Siti", desil=5))
    key = f"{FAM}-01"
    assert [r.topic for r in result.records] == ["m", "u"]  # no link_changed, no family record
    member = LinkedMember.model_validate_json(result.records[0].value or b"")
    assert member.sectoral == SectoralMatches(dtks_id="DTKS-77", dtks_decile=5)
    event = LINKAGE_UPDATE_ADAPTER.validate_json(result.records[1].value or b"")
    summary = summary_of(member)
    assert event == WelfareChanged(
        event_id=update_event_id(change.cause.change_id, key, UpdateEventType.WELFARE_CHANGED),
        member_key=key,
        family_key=FAM,
        cause=UpdateCause(source=ChangeSource.DTKS, change="sectoral_upsert", change_id=change.cause.change_id),
        before=summary,
        after=summary,
        member=member,
        decile_before=3,
        decile_after=5,
        event_time=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),  # the change record's broker timestamp (0 here)
    )
    assert member.event_time == event.event_time
    assert result.records[1].key == key.encode()
    # The same row again changes nothing: no record, no event.
    _, again = _apply_dtks(store, fake, dtks_row("DTKS-77", SITI, "Siti", desil=5))
    assert again.records == []


def test_the_decile_is_left_out_of_the_json_when_unknown() -> None:
    # Records without a decile stay byte-identical to those written before the field existed.
    assert to_canonical_json(SectoralMatches(dtks_id="D-1")) == b'{"bpjs_id":null,"dtks_id":"D-1"}'
    assert b'"dtks_decile":4' in to_canonical_json(SectoralMatches(dtks_id="D-1", dtks_decile=4))
    with pytest.raises(ValidationError):
        SectoralMatches(dtks_id="D-1", dtks_decile=11)


# ------------------------------------------------------------------------------------- the publisher

NIK = "3603121505800002"
T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RING = KeyRing({s: f"test-only-secret-{s}-0123456789abcdef".encode() for s in ("poor", "welfare", "other")})


def _sub(sid: str, events: tuple[EventType, ...], deciles: tuple[int, ...] = ()) -> Subscription:
    return Subscription.model_validate(
        {
            "subscriber_id": sid,
            "purpose_code": "TEST-PURPOSE",
            "purpose_text": "A test purpose for welfare",
            "event_types": events,
            "person_fields": ("decision", "dtks_decile"),
            "filters": {"deciles": deciles},
            "valid_from": VALID_FROM,
        }
    )


#: poor: decile changes of persons in deciles 1-4; welfare: every welfare change; other: new persons only.
REGISTRY = SubscriptionRegistry(
    subscriptions=(
        _sub("poor", (EventType.DECILE_CHANGE,), deciles=(1, 2, 3, 4)),
        _sub("welfare", (EventType.WELFARE_CHANGE,)),
        _sub("other", (EventType.PERSON_NEW,)),
    )
)


def _with_decile(decile: int) -> LinkedMember:
    member = linked_member(1, nik=NIK, dtks_id="DTKS-9")
    return member.model_copy(update={"sectoral": SectoralMatches(dtks_id="DTKS-9", dtks_decile=decile)})


def _handle(pub: Publisher, offset: int, before: int, after: int) -> tuple[KafkaRecord, list[Notification]]:
    old, new = _with_decile(before), _with_decile(after)
    event = update_event(UpdateEventType.WELFARE_CHANGED, old, new, change_id=f"dtks-{before}-{after}")
    record = KafkaRecord(UPDATES, 0, offset, new.member_key.encode(), to_canonical_json(event), T0)
    sent = pub.handle(record)
    pub.confirm(sent)
    return record, sent


def test_a_decile_change_reaches_the_subscribers_whose_filter_holds_before_or_after(tmp_path: Path) -> None:
    log = DisclosureLog(tmp_path / "disclosures.sqlite")
    pub = Publisher(REGISTRY, RING, log, clock=lambda: NOW)
    _, sent = _handle(pub, 1, 3, 5)  # 3 is in 1-4: the poor feed hears that the person left it
    by_sub = {n.envelope.subscriber_id: n for n in sent}
    assert sorted(by_sub) == ["poor", "welfare"]  # "other" did not subscribe: nothing
    member = _with_decile(5)
    for sid, event in (("poor", EventType.DECILE_CHANGE), ("welfare", EventType.WELFARE_CHANGE)):
        n = by_sub[sid]
        assert n.envelope == NotificationEnvelope.model_validate(
            {
                "message_id": n.envelope.message_id,
                "timestamp": datetime(2024, 3, 1, tzinfo=UTC),
                "subscriber_id": sid,
                "purpose_code": "TEST-PURPOSE",
                "event_type": event,
                "record_type": "person",
                "reference_id": RING.for_subscriber(sid).person(member.person_id),
                "record": {"decision": "linked", "dtks_decile": 5},
                "supersedes": None,
                "correction": False,
                "previous_reference_id": None,
            }
        )
        assert n.key == RING.for_subscriber(sid).member(member.member_key)
        (logged,) = log.query(subscriber_id=sid)
        assert (logged.message_id, logged.event_type, logged.fields, logged.subject_id) == (
            n.envelope.message_id,
            event.value,
            ("decision", "dtks_decile"),
            member.person_id,
        )
    _, sent = _handle(pub, 2, 5, 7)  # neither 5 nor 7 is in 1-4
    assert [n.envelope.subscriber_id for n in sent] == ["welfare"]
    _, sent = _handle(pub, 3, 7, 2)  # back into 1-4
    assert sorted(n.envelope.subscriber_id for n in sent) == ["poor", "welfare"]
    assert [n.envelope.record for n in sent] == [{"decision": "linked", "dtks_decile": 2}] * 2
    assert log.query(subscriber_id="other") == []


def test_decile_change_ids_are_deterministic_and_a_redelivery_is_not_resent(tmp_path: Path) -> None:
    ids = []
    for name in ("a", "b"):
        pub = Publisher(REGISTRY, RING, DisclosureLog(tmp_path / f"{name}.sqlite"), clock=lambda: NOW)
        record, sent = _handle(pub, 1, 3, 5)
        ids.append(sorted(n.envelope.message_id for n in sent))
        # Redelivered from a position the state does not reflect (a new consumer group): found in the log.
        again = pub.handle(KafkaRecord(record.topic, 1, 1, record.key, record.value, record.timestamp_ms))
        assert again == []
    assert ids[0] == ids[1] and len(ids[0]) == 2


def test_decile_filters_are_validated_and_person_only() -> None:
    assert _sub("poor", (EventType.DECILE_CHANGE,), deciles=(4, 1, 4)).filters.deciles == (1, 4)
    with pytest.raises(ValidationError, match="deciles are DTKS welfare deciles 1-10"):
        _sub("poor", (EventType.DECILE_CHANGE,), deciles=(0,))
    with pytest.raises(ValidationError, match="decile filters apply to person records only"):
        Subscription.model_validate(
            {
                "subscriber_id": "fam",
                "purpose_code": "TEST-PURPOSE",
                "purpose_text": "A test purpose for welfare",
                "event_types": ("family_new",),
                "family_fields": ("member_count",),
                "filters": {"deciles": (1,)},
                "valid_from": VALID_FROM,
            }
        )
