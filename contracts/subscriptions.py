"""Ministry subscriptions (registry v1) and the notification envelope they receive.

A subscription binds one subscriber (a ministry system) to a purpose: the event types it is told
about, filters on the records, the fields it may receive, whether it may see the raw NIK/KK, and a
validity window (UU PDP 27/2022: purpose limitation and data minimisation). The registry is a
versioned JSON file edited with `regsosek subscriptions add|list|remove`; every change bumps
`registry_version`.

The `NotificationEnvelope` is modelled on the DCI social-registry notify message: message id,
timestamp, event type, reference id, record type (person/family), the projected record and the
purpose code. It is outbound and strict (unknown fields forbidden).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from contracts._base import OutboundModel
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, REVIEW, UPDATES

#: Subscriber ids become topic names (`subscriber.<id>.notifications.v1`) and Kafka principals.
SUBSCRIBER_ID_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"

#: Principals a subscriber id must never be: the broker's super users (`User:admin`, `User:ANONYMOUS`,
#: services/access/acl.py `BROKER_SUPER_USERS`), compared case-insensitively. As a subscriber, `acl sync` would set
#: their password and a removal would delete their login.
RESERVED_SUBSCRIBER_IDS: frozenset[str] = frozenset({"admin", "anonymous"})
#: The prefix of the service principals (`regsosek-gateway`, `-linker`, `-publisher`, and future ones).
RESERVED_SUBSCRIBER_PREFIX = "regsosek-"


def reserved_subscriber_id(subscriber_id: str, super_users: frozenset[str] = frozenset()) -> str | None:
    """Why `subscriber_id` may not be used (a reserved principal), or None if it may.

    `super_users` are further super-user names the broker is configured with (without `User:`).
    """
    folded = subscriber_id.casefold()
    if folded in RESERVED_SUBSCRIBER_IDS or folded in {u.casefold() for u in super_users}:
        return "it is a super user of the broker"
    if folded.startswith(RESERVED_SUBSCRIBER_PREFIX):
        return f"the prefix {RESERVED_SUBSCRIBER_PREFIX!r} is reserved for service principals"
    return None


def notification_topic(subscriber_id: str) -> str:
    """The topic a subscriber's notifications are written to."""
    return f"subscriber.{subscriber_id}.notifications.v1"


class EventType(StrEnum):
    """What happened to a record. Past tense: these are events."""

    PERSON_NEW = "person_new"
    FAMILY_NEW = "family_new"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    DEATH = "death"
    MOVE = "move"
    DECILE_CHANGE = "decile_change"
    WELFARE_CHANGE = "welfare_change"
    LINK_CREATED = "link_created"
    LINK_CHANGED = "link_changed"
    LINK_MERGED = "link_merged"
    LINK_SPLIT = "link_split"


class RecordType(StrEnum):
    """The kind of record a notification carries."""

    PERSON = "person"
    FAMILY = "family"


_P = frozenset({RecordType.PERSON})
_F = frozenset({RecordType.FAMILY})

#: The record types each event type can carry (a changed link shows in the person and the family record).
#: A death shows in the family record (a member the master holds as dead) and, from the linker's update
#: events, in the person record; a move, a merge or split and a (DTKS) decile or welfare change only
#: in the person record.
EVENT_RECORD_TYPES: dict[EventType, frozenset[RecordType]] = {
    EventType.PERSON_NEW: _P,
    EventType.FAMILY_NEW: _F,
    EventType.MEMBER_ADDED: _F,
    EventType.MEMBER_REMOVED: _F,
    EventType.DEATH: _P | _F,
    EventType.MOVE: _P,
    EventType.DECILE_CHANGE: _P,
    EventType.WELFARE_CHANGE: _P,
    EventType.LINK_CREATED: _P,
    EventType.LINK_CHANGED: _P | _F,
    EventType.LINK_MERGED: _P,
    EventType.LINK_SPLIT: _P,
}

#: Fields of a projected person record a subscription may ask for.
PERSON_FIELDS: frozenset[str] = frozenset(
    {
        "nik",
        "member_key",
        "family_key",
        "serial",
        "province_code",
        "regency_code",
        "decision",
        "band",
        "probability",
        "in_dtks",
        "in_bpjs",
        "dtks_id",
        "bpjs_id",
        "dtks_decile",
        "revision",
        "model_version",
    }
)

#: Fields of a projected family record a subscription may ask for.
FAMILY_FIELDS: frozenset[str] = frozenset(
    {
        "kk_number",
        "family_key",
        "province_code",
        "regency_code",
        "member_count",
        "members",
        "kk_mismatch",
        "members_not_in_master",
        "deceased_in_master",
        "revision",
        "model_version",
    }
)

#: Fields that are raw state identifiers: only a subscription with `may_receive_nik` may receive them.
RAW_IDENTIFIER_FIELDS: frozenset[str] = frozenset({"nik", "kk_number"})

Programme = Literal["dtks", "bpjs"]


class SubscriptionFilter(OutboundModel):
    """Which records a subscription is about. Empty lists mean "no restriction"."""

    # Kemendagri province (2 digits) or province+regency (4 digits) codes; matched on the family key.
    region_codes: tuple[str, ...] = ()
    # The person must be linked to at least one of these sectoral programmes.
    programmes: tuple[Programme, ...] = ()
    # The person's DTKS welfare decile (1 = poorest) must be one of these; for a decile or welfare
    # change, the decile before or the one after (person records only).
    # Left out of the registry JSON when empty, so registries written before it stay byte-identical.
    deciles: tuple[int, ...] = Field(default=(), exclude_if=lambda v: not v)

    @field_validator("deciles")
    @classmethod
    def _deciles(cls, deciles: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= d <= 10 for d in deciles):
            raise ValueError("deciles are DTKS welfare deciles 1-10")
        return tuple(sorted(set(deciles)))

    @field_validator("region_codes")
    @classmethod
    def _region_codes(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        for code in codes:
            if not (code.isdigit() and len(code) in (2, 4)):
                raise ValueError("region codes are 2-digit province or 4-digit regency codes")
        return tuple(sorted(set(codes)))


class Subscription(OutboundModel):
    """One subscriber's purpose-bound feed."""

    subscriber_id: str = Field(pattern=SUBSCRIBER_ID_PATTERN)
    purpose_code: str = Field(pattern=r"^[A-Z][A-Z0-9_-]{1,39}$")
    purpose_text: str = Field(min_length=10, max_length=500)
    event_types: tuple[EventType, ...] = Field(min_length=1)
    filters: SubscriptionFilter = SubscriptionFilter()
    person_fields: tuple[str, ...] = ()
    family_fields: tuple[str, ...] = ()
    may_receive_nik: bool = False
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None
    # Deliver the current state of every matching record once before the live feed (the publisher
    # reads the compacted linkage topics; docs/subscriptions.md "Backfill"). Set by `subscriptions add`
    # unless `--no-backfill`; left out of the JSON when false, so older registries stay byte-identical.
    backfill: bool = Field(default=False, exclude_if=lambda v: not v)

    @field_validator("event_types", "person_fields", "family_fields")
    @classmethod
    def _sorted_unique(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(values)))

    @field_validator("subscriber_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        reason = reserved_subscriber_id(value)
        if reason is not None:
            raise ValueError(f"subscriber id {value!r} is reserved: {reason}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unknown = sorted(set(self.person_fields) - PERSON_FIELDS) + sorted(set(self.family_fields) - FAMILY_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        raw = sorted(RAW_IDENTIFIER_FIELDS & (set(self.person_fields) | set(self.family_fields)))
        if raw and not self.may_receive_nik:
            raise ValueError(f"fields {', '.join(raw)} need may_receive_nik (raw state identifiers)")
        # A record type that some subscribed event carries only in that type needs fields to project.
        needed = {t for e in self.event_types if len(EVENT_RECORD_TYPES[e]) == 1 for t in EVENT_RECORD_TYPES[e]}
        if RecordType.PERSON in needed and not self.person_fields:
            raise ValueError("person events are subscribed but no person_fields are allowed")
        if RecordType.FAMILY in needed and not self.family_fields:
            raise ValueError("family events are subscribed but no family_fields are allowed")
        if not self.person_fields and not self.family_fields:
            raise ValueError("a subscription needs person_fields or family_fields")
        if self.filters.programmes and RecordType.FAMILY in self.record_types():
            # Families carry no programme membership; sending them would leak non-members' families.
            raise ValueError("programme filters apply to person records only; drop the family event types")
        if self.filters.deciles and RecordType.FAMILY in self.record_types():
            # Families carry no decile either: the filter could not be applied to them.
            raise ValueError("decile filters apply to person records only; drop the family event types")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def record_types(self) -> set[RecordType]:
        """The record types this subscription receives: carried by its events and with fields to project."""
        carried: set[RecordType] = set().union(*(EVENT_RECORD_TYPES[e] for e in self.event_types))
        return {t for t in carried if self.fields_for(t)}

    def fields_for(self, record_type: RecordType) -> tuple[str, ...]:
        """The fields this subscription may receive for `record_type`."""
        return self.person_fields if record_type is RecordType.PERSON else self.family_fields

    def active_at(self, moment: datetime) -> bool:
        """True when `moment` is inside the validity window."""
        return self.valid_from <= moment and (self.valid_until is None or moment < self.valid_until)

    @property
    def topic(self) -> str:
        """The subscriber's notification topic."""
        return notification_topic(self.subscriber_id)


#: The linkage topics an integration team may be given read access to (the linker's outputs).
INTEGRATION_TOPICS: frozenset[str] = frozenset({LINKED_MEMBERS, LINKED_FAMILIES, UPDATES, REVIEW})


def integration_group_prefix(team_id: str) -> str:
    """The prefix an integration team's consumer group ids must start with."""
    return f"integration.{team_id}."


class IntegrationTeam(OutboundModel):
    """An internal integration team (a data warehouse, an analytics platform) that reads linkage topics.

    Unlike a subscriber it gets no projected, pseudonymised feed: it reads the named linkage topics as
    the linker wrote them (raw identifiers included), so each grant is a decision with a purpose.
    Its Kafka principal is `User:<team_id>`; its consumer groups start with `integration.<team_id>.`.
    """

    team_id: str = Field(pattern=SUBSCRIBER_ID_PATTERN)
    purpose_text: str = Field(min_length=10, max_length=500)
    topics: tuple[str, ...] = Field(min_length=1)

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(topics) - INTEGRATION_TOPICS)
        if unknown:
            allowed = ", ".join(sorted(INTEGRATION_TOPICS))
            raise ValueError(
                f"not a linkage topic an integration team may read: {', '.join(unknown)} (one of {allowed})"
            )
        return tuple(sorted(set(topics)))

    @field_validator("team_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        reason = reserved_subscriber_id(value)
        if reason is not None:
            raise ValueError(f"team id {value!r} is reserved: {reason}")
        return value

    @property
    def group_prefix(self) -> str:
        """The prefix of the team's consumer group ids."""
        return integration_group_prefix(self.team_id)


class SubscriptionRegistry(OutboundModel):
    """The versioned registry file: every subscription and integration team, principals unique."""

    schema_version: Literal["1"] = "1"
    registry_version: int = Field(default=0, ge=0)
    subscriptions: tuple[Subscription, ...] = ()
    # Left out of the JSON when empty, so registries written before teams existed stay byte-identical.
    integration_teams: tuple[IntegrationTeam, ...] = Field(default=(), exclude_if=lambda v: not v)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [s.subscriber_id for s in self.subscriptions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate subscriber ids: {', '.join(duplicates)}")
        # Subscriber and team ids are both Kafka principals: one name cannot be both, or two teams.
        ids = self.principals()
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate subscriber or team ids: {', '.join(duplicates)}")
        return self

    def principals(self) -> list[str]:
        """Every subscriber and team id (the registry's Kafka principals, without `User:`)."""
        return [s.subscriber_id for s in self.subscriptions] + [t.team_id for t in self.integration_teams]

    def team(self, team_id: str) -> IntegrationTeam | None:
        """The integration team `team_id`, or None."""
        return next((t for t in self.integration_teams if t.team_id == team_id), None)

    def with_team(self, team: IntegrationTeam) -> SubscriptionRegistry:
        """A new registry version with `team` added (ValueError if the id is taken)."""
        if team.team_id in self.principals():
            raise ValueError(f"{team.team_id!r} already exists as a subscriber or team")
        return self._next(integration_teams=(*self.integration_teams, team))

    def without_team(self, team_id: str) -> SubscriptionRegistry:
        """A new registry version without the team (KeyError if it is not there)."""
        if self.team(team_id) is None:
            raise KeyError(team_id)
        return self._next(integration_teams=tuple(t for t in self.integration_teams if t.team_id != team_id))

    def _next(self, **changes: object) -> SubscriptionRegistry:
        fields = {"subscriptions": self.subscriptions, "integration_teams": self.integration_teams, **changes}
        return SubscriptionRegistry(registry_version=self.registry_version + 1, **fields)  # type: ignore[arg-type]

    def get(self, subscriber_id: str) -> Subscription | None:
        """The subscription of `subscriber_id`, or None."""
        return next((s for s in self.subscriptions if s.subscriber_id == subscriber_id), None)

    def with_added(self, subscription: Subscription) -> SubscriptionRegistry:
        """A new registry version with `subscription` added (ValueError if the id exists)."""
        if self.get(subscription.subscriber_id) is not None:
            raise ValueError(f"subscriber {subscription.subscriber_id!r} already exists")
        if self.team(subscription.subscriber_id) is not None:
            raise ValueError(f"{subscription.subscriber_id!r} already exists as an integration team")
        return self._next(subscriptions=(*self.subscriptions, subscription))

    def without(self, subscriber_id: str) -> SubscriptionRegistry:
        """A new registry version without `subscriber_id` (KeyError if it is not there)."""
        if self.get(subscriber_id) is None:
            raise KeyError(subscriber_id)
        return self._next(subscriptions=tuple(s for s in self.subscriptions if s.subscriber_id != subscriber_id))


JsonScalar = str | int | float | bool | None
ProjectedValue = JsonScalar | list[dict[str, JsonScalar]]


class NotificationEnvelope(OutboundModel):
    """One notification on `subscriber.<id>.notifications.v1` (key = `reference_id`).

    `message_id` is deterministic: the same input yields the same id, so consumers dedupe on it.
    `supersedes` names the subscriber's previous notification about the same reference; `correction`
    is true when the earlier one was wrong (the person's link changed), not merely outdated.
    `previous_reference_id` (only `link_merged` / `link_split`) is the subscriber's pseudonym of the
    person id the member had before: the subscriber maps its records from that reference to `reference_id`.
    `snapshot` (optional, default false) marks a notification of the backfill: the current state of a
    record that existed before the subscription, delivered once before the live feed.
    """

    schema_version: Literal["1"] = "1"
    message_id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    timestamp: AwareDatetime
    subscriber_id: str = Field(pattern=SUBSCRIBER_ID_PATTERN)
    purpose_code: str
    event_type: EventType
    record_type: RecordType
    reference_id: str
    record: dict[str, ProjectedValue]
    supersedes: str | None = None
    correction: bool = False
    previous_reference_id: str | None = None
    # Left out when false: live notifications stay byte-identical to those before backfill existed.
    snapshot: bool = Field(default=False, exclude_if=lambda v: not v)
