"""The publisher's decisions, free of Kafka: one linkage output in -> notifications out.

For every subscription the record is filtered, projected and pseudonymised; the event type is derived
from what the subscriber last received (delivery state). The rules (views, event types, corrections,
message ids) are pure, in `integration/notifications.py`; this module adds the delivery state and the
disclosure log. Message ids are deterministic: a UUID built from the subscriber, the input (topic, key,
value bytes), the event and the notification it supersedes, so reprocessing the same input after a crash
yields the same id and consumers dedupe on it.

Link updates (`linkage.updates.v1`) are delivered as the subscription's own event types (death, move,
link created/changed/merged/split, decile change, `UPDATE_EVENT_TYPES`); their ids depend on the input only, so a
redelivered update is found (as sent) in the disclosure log. Input positions below what the state reflects are
replays and are skipped (`DeliveryState.positions`).

Delivery order (the Kafka loop in `services.publisher.loop`): `handle` each record of a batch ->
`log_pending` (write-ahead: every disclosure is logged, status pending, before anything is sent) ->
produce all notifications and wait for the acks -> `confirm` (the `sent` outcomes + delivery state in
one SQLite transaction) -> commit the input offsets. A log that cannot be written raises
`DisclosureLogError` before the send. A crash before `confirm` re-sends the same messages (same ids, the
same log entries); a crash after it finds the state up to date and sends nothing twice. A new
`Publisher` first marks the entries a stopped run left pending as `in_doubt` (they may have been
delivered); the redelivered input sends them again and records `sent`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts.linkage_outputs import IntegratedFamily, LinkedMember
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER, AnyLinkageUpdate, Merged, Split
from contracts.subscriptions import EventType, NotificationEnvelope, RecordType, Subscription, SubscriptionRegistry
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, UPDATES
from integration.notifications import (
    ALWAYS_SENT,
    NEVER_CORRECTION,
    View,
    family_event,
    family_state_key,
    family_view,
    member_state_key,
    message_id,
    person_event,
    person_view,
    update_event,
)
from integration.projection import matches_filters
from integration.pseudonyms import KeyRing, Pseudonymiser
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import SENT, Disclosure, DisclosureLog
from services.publisher.state import Delivered, DeliveryState


@dataclass(frozen=True)
class SourceTopics:
    """The linkage topics the publisher reads (the catalogue's by default; tests use private copies)."""

    members: str = LINKED_MEMBERS
    families: str = LINKED_FAMILIES
    updates: str = UPDATES

    def all(self) -> tuple[str, ...]:
        """Every source topic, for the consumer's subscription."""
        return (self.members, self.families, self.updates)


@dataclass(frozen=True)
class Notification:
    """One notification to send, with what `confirm` records once the broker acknowledged it.

    `key` is the subscriber's pseudonym of the record slot (`mem-...` for a member, `fam-...` for a
    family), so every notification about one member or family is in order on one partition.
    """

    topic: str
    key: str
    envelope: NotificationEnvelope
    state_key: str
    delivered: Delivered
    disclosure: Disclosure


class PublisherStats:
    """Counters the loop reports (and tests read); no person data, only counts."""

    def __init__(self) -> None:
        self.consumed = 0
        self.sent = 0
        self.unchanged = 0
        self.undecodable = 0
        # Entries a stopped run left pending, marked in doubt when this publisher started.
        self.in_doubt = 0


class Publisher:
    """Turns linkage outputs into notifications for every active subscription.

    Construction reconciles the disclosure log (pending entries of a stopped run become `in_doubt`);
    it raises `DisclosureLogError` if the log cannot be written.
    """

    def __init__(
        self,
        registry: SubscriptionRegistry,
        keys: KeyRing,
        log: DisclosureLog,
        *,
        topics: SourceTopics = SourceTopics(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.topics = topics
        self.keys = keys
        self.log = log
        self.state = DeliveryState(log.connection)
        self.stats = PublisherStats()
        self._clock = clock
        self.clock = clock
        # Deliveries decided in this batch but not yet confirmed: later records of the batch see them.
        self._pending: dict[tuple[str, str], Delivered] = {}
        self._pending_ids: set[str] = set()
        # Message ids of this batch whose entries `log_pending` wrote (confirm need not write them again).
        self._logged_ahead: set[str] = set()
        # Input positions the state reflects (confirmed) and those handled in this batch.
        self._done = self.state.positions()
        self._handled: dict[tuple[str, int], int] = {}
        self.stats.in_doubt = log.mark_pending_in_doubt(clock())

    # ------------------------------------------------------------------------------------ decisions

    def handle(self, record: KafkaRecord) -> list[Notification]:
        """The notifications one linkage output causes (possibly none)."""
        self.stats.consumed += 1
        where = (record.topic, record.partition)
        if record.offset < self._done.get(where, 0):
            # Already reflected in the state (a replay): deciding it again would step the subscribers back.
            self.stats.unchanged += 1
            return []
        self._handled[where] = max(self._handled.get(where, 0), record.offset + 1)
        if record.value is None:  # a compaction tombstone: nothing to tell
            return []
        try:
            if record.topic == self.topics.families:
                family = IntegratedFamily.model_validate_json(record.value)
                out = [n for s in self._active(record) if (n := self._family(s, family, record))]
            elif record.topic == self.topics.updates:
                update = LINKAGE_UPDATE_ADAPTER.validate_json(record.value)
                out = [n for s in self._active(record) if (n := self._update(s, update, record))]
            else:
                member = LinkedMember.model_validate_json(record.value)
                out = [n for s in self._active(record) if (n := self._person(s, member, record))]
        except ValidationError:
            # Our own linker wrote it; a shape we cannot read is counted, never echoed (it holds NIKs).
            self.stats.undecodable += 1
            return []
        for n in out:
            self._pending[(n.envelope.subscriber_id, n.state_key)] = n.delivered
            self._pending_ids.add(n.envelope.message_id)
        return out

    def _active(self, record: KafkaRecord) -> list[Subscription]:
        moment = _moment(record)
        return [s for s in self.registry.subscriptions if s.active_at(moment)]

    def _last(self, subscriber_id: str, state_key: str) -> Delivered | None:
        pending = self._pending.get((subscriber_id, state_key))
        return pending if pending is not None else self.state.get(subscriber_id, state_key)

    def _seen(self, sub: Subscription, member: LinkedMember) -> tuple[str, Delivered | None, Pseudonymiser, View]:
        """A member record as `sub` sees it, and what its subscriber last received of that member."""
        state_key = member_state_key(member)
        prior = self._last(sub.subscriber_id, state_key)
        pseudonyms = self.keys.for_subscriber(sub.subscriber_id)
        return state_key, prior, pseudonyms, person_view(member, sub, pseudonyms)

    def _person(
        self, sub: Subscription, member: LinkedMember, record: KafkaRecord, *, corrections_only: bool = False
    ) -> Notification | None:
        if RecordType.PERSON not in sub.record_types() or not matches_filters(sub, member.family_key, member):
            return None
        state_key, prior, _, view = self._seen(sub, member)
        if prior is not None and (prior.digest == view.digest or member.revision < prior.revision):
            # Nothing new for this subscriber, or a replayed older revision (never step back).
            self.stats.unchanged += 1
            return None
        from_updates = record.topic == self.topics.updates
        correction = prior is not None and (from_updates or prior.person_ids.get(member.member_key) != member.person_id)
        event = person_event(from_updates, prior is not None, member.matched_nik is not None)
        # Corrections go to whoever received the earlier version, whatever it subscribed to.
        if not correction and (corrections_only or event not in sub.event_types):
            return None
        delivered = Delivered("", view.digest, {member.member_key: member.person_id}, (), member.revision)
        return self._build(
            sub,
            record,
            event,
            RecordType.PERSON,
            view,
            prior,
            correction,
            state_key,
            delivered,
            subject=member.person_id,
            persons=(member.person_id,),
        )

    def _update(self, sub: Subscription, update: AnyLinkageUpdate, record: KafkaRecord) -> Notification | None:
        """A link update as the subscription's own event type; unsubscribed types only as corrections."""
        event, deciles = update_event(update, sub)
        if event not in sub.event_types:
            # Not subscribed to this kind: nothing, except a correction to whoever received the earlier
            # version of the member when its projection changed (`_person` on the updates topic).
            return self._person(sub, update.member, record, corrections_only=True)
        member = update.member
        if RecordType.PERSON not in sub.record_types() or not matches_filters(sub, member.family_key, member, deciles):
            return None
        state_key, prior, pseudonyms, view = self._seen(sub, member)
        # The id depends on the input only (not on the state), so a replayed event is found in the log.
        mid = _message_id(sub.subscriber_id, record, event, None)
        unchanged = prior is not None and prior.digest == view.digest and event not in ALWAYS_SENT
        stale = prior is not None and member.revision < prior.revision
        if unchanged or stale or mid in self._pending_ids or self.state.logged(mid):
            self.stats.unchanged += 1
            return None
        previous: str | None = None
        persons: tuple[str, ...] = (member.person_id,)
        if isinstance(update, Merged | Split):
            previous = pseudonyms.person(update.old_person_id)
            persons = tuple(sorted({update.old_person_id, member.person_id}))
        # Wrong, not merely outdated: the earlier record differs and the event is about the link itself.
        correction = prior is not None and prior.digest != view.digest and event not in NEVER_CORRECTION
        delivered = Delivered("", view.digest, {member.member_key: member.person_id}, (), member.revision)
        return self._build(
            sub,
            record,
            event,
            RecordType.PERSON,
            view,
            prior,
            correction,
            state_key,
            delivered,
            subject=member.person_id,
            persons=persons,
            previous=previous,
            message_id=mid,
        )

    def _family(self, sub: Subscription, family: IntegratedFamily, record: KafkaRecord) -> Notification | None:
        if RecordType.FAMILY not in sub.record_types() or not matches_filters(sub, family.family_key, None):
            return None
        state_key = family_state_key(family)
        prior = self._last(sub.subscriber_id, state_key)
        view = family_view(family, sub, self.keys.for_subscriber(sub.subscriber_id))
        if prior is not None and (prior.digest == view.digest or family.revision < prior.revision):
            self.stats.unchanged += 1
            return None
        person_ids = {m.member_key: m.person_id for m in family.members}
        deceased = tuple(sorted(family.deceased_in_master_serials))
        event, correction = family_event(
            prior.person_ids if prior is not None else None,
            prior.deceased if prior is not None else (),
            person_ids,
            deceased,
        )
        if not correction and event not in sub.event_types:
            return None
        delivered = Delivered("", view.digest, person_ids, deceased, family.revision)
        return self._build(
            sub,
            record,
            event,
            RecordType.FAMILY,
            view,
            prior,
            correction,
            state_key,
            delivered,
            subject=family.family_key,
            persons=tuple(sorted(set(person_ids.values()))),
        )

    def _build(
        self,
        sub: Subscription,
        record: KafkaRecord,
        event: EventType,
        record_type: RecordType,
        view: View,
        prior: Delivered | None,
        correction: bool,
        state_key: str,
        delivered: Delivered,
        *,
        subject: str,
        persons: tuple[str, ...],
        previous: str | None = None,
        message_id: str | None = None,
    ) -> Notification:
        supersedes = prior.message_id if prior is not None else None
        if message_id is None:
            message_id = _message_id(sub.subscriber_id, record, event, supersedes)
        envelope = NotificationEnvelope(
            message_id=message_id,
            timestamp=_moment(record),
            subscriber_id=sub.subscriber_id,
            purpose_code=sub.purpose_code,
            event_type=event,
            record_type=record_type,
            reference_id=view.reference,
            record=view.projected,
            supersedes=supersedes,
            correction=correction,
            previous_reference_id=previous,
        )
        # The old-to-new mapping is itself disclosed: logged as a field, with both person ids.
        fields = tuple(sorted([*view.projected, *(["previous_reference_id"] if previous is not None else [])]))
        disclosure = Disclosure(
            message_id=message_id,
            subscriber_id=sub.subscriber_id,
            purpose_code=sub.purpose_code,
            event_type=event.value,
            record_type=record_type.value,
            subject_id=subject,
            reference_id=view.reference,
            fields=fields,
            disclosed_at=self._clock(),
            source=f"{record.topic}/{record.partition}/{record.offset}",
            person_ids=persons,
        )
        final = replace(delivered, message_id=message_id)
        # Keyed by the record slot (member or family), not the person: a correction that changes the
        # person reference still lands on the same partition, after the notification it supersedes.
        return Notification(sub.topic, view.slot, envelope, state_key, final, disclosure)

    # ------------------------------------------------------------------------------------- backfill

    def snapshot(self, sub: Subscription, record: KafkaRecord) -> Notification | None:
        """The backfill notification of one current record (latest value of its key) for a new subscription.

        Sent only when the subscription receives the record type, the record passes its filters and the
        subscription lists the record's creation event (`person_new` / `link_created` / `family_new`): a
        feed of deaths only gets no snapshot of everyone. Nothing when the subscriber already received
        this or a newer revision (a backfill repeated after a crash). `snapshot: true` in the envelope;
        the disclosure's source is `snapshot:<topic>/<partition>/<offset>`. Input positions are not
        advanced: the live feed reads the same topics for the other subscribers.
        """
        if record.value is None:
            return None
        try:
            if record.topic == self.topics.families:
                family = IntegratedFamily.model_validate_json(record.value)
                return self._snapshot_family(sub, family, record)
            member = LinkedMember.model_validate_json(record.value)
        except ValidationError:
            self.stats.undecodable += 1
            return None
        return self._snapshot_person(sub, member, record)

    def _snapshot_due(
        self,
        sub: Subscription,
        event: EventType,
        record_type: RecordType,
        family_key: str,
        member: LinkedMember | None,
        state_key: str,
        revision: int,
    ) -> bool:
        """Whether `sub` takes this snapshot record and has not yet been sent this revision or a newer one."""
        if (
            event not in sub.event_types
            or record_type not in sub.record_types()
            or not matches_filters(sub, family_key, member)
        ):
            return False
        prior = self._last(sub.subscriber_id, state_key)
        return prior is None or revision > prior.revision

    def _snapshot_person(self, sub: Subscription, member: LinkedMember, record: KafkaRecord) -> Notification | None:
        event = person_event(False, False, member.matched_nik is not None)
        state_key = member_state_key(member)
        if not self._snapshot_due(sub, event, RecordType.PERSON, member.family_key, member, state_key, member.revision):
            return None
        view = person_view(member, sub, self.keys.for_subscriber(sub.subscriber_id))
        delivered = Delivered("", view.digest, {member.member_key: member.person_id}, (), member.revision)
        return self._snapshot_built(
            self._build(
                sub,
                record,
                event,
                RecordType.PERSON,
                view,
                None,
                False,
                state_key,
                delivered,
                subject=member.person_id,
                persons=(member.person_id,),
                message_id=_message_id(sub.subscriber_id, record, event, "snapshot"),
            )
        )

    def _snapshot_family(self, sub: Subscription, family: IntegratedFamily, record: KafkaRecord) -> Notification | None:
        state_key = family_state_key(family)
        if not self._snapshot_due(
            sub, EventType.FAMILY_NEW, RecordType.FAMILY, family.family_key, None, state_key, family.revision
        ):
            return None
        view = family_view(family, sub, self.keys.for_subscriber(sub.subscriber_id))
        person_ids = {m.member_key: m.person_id for m in family.members}
        delivered = Delivered(
            "", view.digest, person_ids, tuple(sorted(family.deceased_in_master_serials)), family.revision
        )
        return self._snapshot_built(
            self._build(
                sub,
                record,
                EventType.FAMILY_NEW,
                RecordType.FAMILY,
                view,
                None,
                False,
                state_key,
                delivered,
                subject=family.family_key,
                persons=tuple(sorted(set(person_ids.values()))),
                message_id=_message_id(sub.subscriber_id, record, EventType.FAMILY_NEW, "snapshot"),
            )
        )

    def _snapshot_built(self, n: Notification) -> Notification:
        envelope = n.envelope.model_copy(update={"snapshot": True})
        disclosure = replace(n.disclosure, source="snapshot:" + n.disclosure.source)
        self._pending[(envelope.subscriber_id, n.state_key)] = n.delivered
        self._pending_ids.add(envelope.message_id)
        return replace(n, envelope=envelope, disclosure=disclosure)

    # ------------------------------------------------------------------ around the send: log, then ack

    def log_pending(self, notifications: list[Notification]) -> None:
        """Before the send: log every disclosure (status pending) in one transaction.

        An entry already logged (the same message id, e.g. a redelivered batch) is not logged twice.
        Raises `DisclosureLogError` (nothing logged) if the log cannot be written: send nothing then.
        """
        if not notifications:
            return
        now = self._clock()
        with self.log.transaction() as tx:
            self.log.append([_at(n.disclosure, now) for n in notifications], db=tx)
        self._logged_ahead.update(n.envelope.message_id for n in notifications)

    def confirm(self, sent: list[Notification]) -> None:
        """The broker acknowledged `sent`: record the `sent` outcomes and update the state atomically.

        Entries not logged ahead (a caller that skipped `log_pending`) are logged here first, so a sent
        notification is never without its entry. Raises `DisclosureLogError` if the log cannot be written.
        """
        now = self._clock()
        with self.log.transaction() as tx:
            unlogged = [_at(n.disclosure, now) for n in sent if n.envelope.message_id not in self._logged_ahead]
            self.log.append(unlogged, db=tx)
            self.log.mark(SENT, [n.envelope.message_id for n in sent], now, db=tx)
            for n in sent:
                self.state.put(tx, n.envelope.subscriber_id, n.state_key, n.delivered)
            self.state.advance(tx, self._handled)
        self.stats.sent += len(sent)
        for where, offset in self._handled.items():
            self._done[where] = max(self._done.get(where, 0), offset)
        self.abandon()

    def abandon(self) -> None:
        """The batch was not delivered: forget its pending state (the input will be redelivered)."""
        self._pending.clear()
        self._pending_ids.clear()
        self._logged_ahead.clear()
        self._handled.clear()


def _at(d: Disclosure, moment: datetime) -> Disclosure:
    # The entry's time is when it was logged (just before the send), not when the notification was built.
    return replace(d, disclosed_at=moment)


def _moment(record: KafkaRecord) -> datetime:
    return record.time


def _message_id(subscriber_id: str, record: KafkaRecord, event: EventType, supersedes: str | None) -> str:
    return message_id(subscriber_id, record.topic, record.key, record.value, event, supersedes)
