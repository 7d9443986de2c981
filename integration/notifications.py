"""Notification rules: what a subscriber is told about a linkage output (pure; the publisher's state,
disclosure log and Kafka loop are in `services/publisher/`).

A record is seen through one subscription as a *view*: its projection (`integration/projection.py`,
only the fields the subscription lists, internal ids replaced by the subscriber's pseudonyms), the
reference id and a digest of both. The publisher compares the digest with what the subscriber last
received (its delivery state) and asks these rules which event type the notification has and whether it
corrects an earlier one. Message ids are deterministic: a UUID of the subscriber, the input (topic, key,
value bytes), the event and the notification it supersedes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contracts.linkage_outputs import IntegratedFamily, LinkedMember
from contracts.linkage_updates import AnyLinkageUpdate, UpdateEventType, WelfareChanged
from contracts.subscriptions import EventType, ProjectedValue, Subscription
from integration.projection import project_family, project_person
from integration.pseudonyms import Pseudonymiser

#: The subscription event type each link update (`linkage.updates.v1`) is delivered as. A
#: `welfare_changed` update is delivered as `decile_change`, or as `welfare_change` to a subscription
#: that lists only that one (`WELFARE_EVENT_TYPES`): one notification per subscriber, never both.
UPDATE_EVENT_TYPES: dict[UpdateEventType, EventType] = {
    UpdateEventType.LINK_CREATED: EventType.LINK_CREATED,
    UpdateEventType.LINK_CHANGED: EventType.LINK_CHANGED,
    UpdateEventType.PERSON_DIED: EventType.DEATH,
    UpdateEventType.MOVED: EventType.MOVE,
    UpdateEventType.MERGED: EventType.LINK_MERGED,
    UpdateEventType.SPLIT: EventType.LINK_SPLIT,
    UpdateEventType.WELFARE_CHANGED: EventType.DECILE_CHANGE,
}

#: The subscription event types a `welfare_changed` update can be delivered as, in order of preference.
WELFARE_EVENT_TYPES: tuple[EventType, ...] = (EventType.DECILE_CHANGE, EventType.WELFARE_CHANGE)

#: Update events whose news is the event itself: sent even when the subscriber's projection is unchanged
#: (a death or a move leaves the member record as it was; a merge or split is the id mapping).
#: A decile change is news even to a subscriber that does not receive the decile field.
ALWAYS_SENT = frozenset(
    {
        EventType.DEATH,
        EventType.MOVE,
        EventType.LINK_MERGED,
        EventType.LINK_SPLIT,
        EventType.DECILE_CHANGE,
        EventType.WELFARE_CHANGE,
    }
)
#: Update events that report news about the same link, never a correction of an earlier record.
NEVER_CORRECTION = frozenset({EventType.DEATH, EventType.MOVE, EventType.DECILE_CHANGE, EventType.WELFARE_CHANGE})

# Fixed namespace for the message-id UUIDs (uuid5-style: SHA-1 over the namespace and a name).
_MESSAGE_NS = uuid.UUID("6c0f8f0e-3b1e-5a43-9a55-52454753454b")


@dataclass(frozen=True)
class View:
    """A record as one subscriber sees it: the projected fields, the reference id (the person's or the
    family's pseudonym), their digest (what the delivery state compares) and the record slot's pseudonym
    (the notification's Kafka key)."""

    projected: dict[str, ProjectedValue]
    reference: str
    digest: str
    slot: str


def member_state_key(member: LinkedMember) -> str:
    """The delivery-state key of a member record (one per member slot and subscriber)."""
    return "m:" + member.member_key


def family_state_key(family: IntegratedFamily) -> str:
    """The delivery-state key of a family record."""
    return "f:" + family.family_key


def person_view(member: LinkedMember, sub: Subscription, pseudonyms: Pseudonymiser) -> View:
    """A member record as the subscriber of `sub` (whose pseudonyms are `pseudonyms`) sees it."""
    projected = project_person(member, sub, pseudonyms)
    reference = pseudonyms.person(member.person_id)
    return View(projected, reference, digest(reference, projected), pseudonyms.member(member.member_key))


def family_view(family: IntegratedFamily, sub: Subscription, pseudonyms: Pseudonymiser) -> View:
    """A family record as the subscriber of `sub` sees it (its slot is its reference)."""
    projected = project_family(family, sub, pseudonyms)
    reference = pseudonyms.family(family.family_key)
    return View(projected, reference, digest(reference, projected), reference)


def person_event(from_updates: bool, received_before: bool, linked: bool) -> EventType:
    """The event of a member record: `link_changed` on the updates topic or for a subscriber who received
    the member before; else `link_created` when it is linked to the master, `person_new` when not."""
    if from_updates or received_before:
        return EventType.LINK_CHANGED
    return EventType.LINK_CREATED if linked else EventType.PERSON_NEW


def update_event(update: AnyLinkageUpdate, sub: Subscription) -> tuple[EventType, tuple[int | None, ...] | None]:
    """The subscription's own event type of a link update, and the deciles (before, after) of a welfare
    change (None for the other updates) that the subscription's decile filter applies to."""
    event = UPDATE_EVENT_TYPES[UpdateEventType(update.event)]
    if isinstance(update, WelfareChanged):
        event = next((e for e in WELFARE_EVENT_TYPES if e in sub.event_types), event)
        return event, (update.decile_before, update.decile_after)
    return event, None


def family_event(
    before: Mapping[str, str] | None, deceased_before: Sequence[int], now: Mapping[str, str], deceased: Sequence[int]
) -> tuple[EventType, bool]:
    """The event of a family record and whether it corrects the earlier one, from the person ids by
    member key and the deceased serials the subscriber received (`before`: None when nothing yet) and
    those of the record: a new deceased member is a `death`, a new member `member_added`, a member gone
    `member_removed`, anything else `link_changed`; a member whose person id changed makes a correction."""
    if before is None:
        return EventType.FAMILY_NEW, False
    old_keys, new_keys = set(before), set(now)
    correction = any(before[k] != now[k] for k in old_keys & new_keys)
    if set(deceased) - set(deceased_before):
        return EventType.DEATH, correction
    if new_keys - old_keys:
        return EventType.MEMBER_ADDED, correction
    if old_keys - new_keys:
        return EventType.MEMBER_REMOVED, correction
    return EventType.LINK_CHANGED, correction


def digest(reference: str, projected: dict[str, ProjectedValue]) -> str:
    """The digest of what a subscriber sees of a record (equal digest: nothing new to tell)."""
    body = json.dumps({"ref": reference, "record": projected}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def message_id(
    subscriber_id: str, topic: str, key: bytes | None, value: bytes | None, event: EventType, supersedes: str | None
) -> str:
    """The notification's id: the same input, event and superseded notification give the same id."""
    value_hash = hashlib.sha256(value or b"").hexdigest()
    name = "|".join((subscriber_id, topic, (key or b"").hex(), value_hash, event.value, supersedes or "-"))
    return str(uuid.uuid5(_MESSAGE_NS, name))
