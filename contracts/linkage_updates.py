"""Outbound link updates (v1) on `linkage.updates.v1`: what a master or sectoral change did to a link.

When the Dukcapil master or a sectoral source changes, the linker re-evaluates the links the change
affects and publishes one event per member and consequence, keyed by the member key (so a member's
events stay in order on one partition). Events are discriminated on `event`:

- `link_created`: a member that had no master link is now linked (always followed by `merged`, since
  its person id changes from the minted one to the master person's);
- `merged`: the member's minted person id `old_person_id` is now the master person `new_person_id`;
- `split`: the reverse: the member lost its master link and carries a minted id again;
- `link_changed`: anything else about the link changed (another master person, band, probability,
  sectoral ids, a corrected or re-carded master person);
- `person_died`: the master person the member is linked to was registered as dead;
- `moved`: the master person the member is linked to moved (new address in the master).
- `welfare_changed`: the DTKS welfare decile of the member's (unchanged) person changed, e.g. a DTKS
  row with a new `desil`; `decile_before` / `decile_after` (None: no DTKS decile known).

A clerical review decision applied by the linker gives the same events with the cause
`{"source": "review", "change": "clerical", "change_id": <decision id>}`.

Every event carries the cause (which change), a summary of the decision before and after, and the
member's record after the update (the same value re-emitted on `linkage.members.v1`). The `event_id`
is derived from the cause, the member key and the event type, so re-processing a change yields the
same id and byte-identical JSON (`contracts.linkage_outputs.to_canonical_json`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from typing import Annotated, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from contracts.linkage_outputs import LinkBand, LinkedMember, MemberDecision, PersonIdKind, event_time_field


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpdateEventType(StrEnum):
    """The kinds of link update."""

    LINK_CREATED = "link_created"
    LINK_CHANGED = "link_changed"
    PERSON_DIED = "person_died"
    MOVED = "moved"
    MERGED = "merged"
    SPLIT = "split"
    WELFARE_CHANGED = "welfare_changed"


class ChangeSource(StrEnum):
    """Where the change that caused an update came from."""

    DUKCAPIL = "dukcapil"
    DTKS = "dtks"
    BPJS = "bpjs"
    #: Added inside v1: a clerical review decision (`change` = "clerical", `change_id` = its decision id).
    REVIEW = "review"


class UpdateCause(_Outbound):
    """The change behind an update: its source, kind (`born`, `died`, ..., `sectoral_upsert`) and id."""

    source: ChangeSource
    change: Literal["born", "died", "moved", "corrected", "kk_changed", "sectoral_upsert", "clerical"]
    # The population change's own id; for a sectoral row `<source>-<row id>-<content digest>`.
    change_id: str = Field(min_length=1, max_length=128)
    effective_date: dt.date | None = None


class DecisionSummary(_Outbound):
    """A member's link in brief (no NIK: the member record after the update carries what is entitled)."""

    decision: MemberDecision
    band: LinkBand
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    person_id: str
    person_id_kind: PersonIdKind


class _UpdateBase(_Outbound):
    schema_version: Literal["1"] = "1"
    event_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    member_key: str = Field(pattern=r"^\d{22}-\d{2}$")
    family_key: str = Field(pattern=r"^\d{22}$")
    cause: UpdateCause
    before: DecisionSummary
    after: DecisionSummary
    member: LinkedMember = Field(description="the member's record after the update")
    event_time: AwareDatetime | None = event_time_field(
        "the change happened: the change record's broker timestamp, or the review decision's `decided_at`"
    )


class LinkCreated(_UpdateBase):
    """A member without a master link is now linked."""

    event: Literal["link_created"] = "link_created"


class LinkChanged(_UpdateBase):
    """The member's link changed in another way (see the module docstring)."""

    event: Literal["link_changed"] = "link_changed"


class PersonDied(_UpdateBase):
    """The linked master person was registered as dead."""

    event: Literal["person_died"] = "person_died"


class PersonMoved(_UpdateBase):
    """The linked master person moved."""

    event: Literal["moved"] = "moved"


class Merged(_UpdateBase):
    """The minted id `old_person_id` now denotes the master person `new_person_id`."""

    event: Literal["merged"] = "merged"
    old_person_id: str
    new_person_id: str


class Split(_UpdateBase):
    """The member's master id `old_person_id` no longer applies; it carries `new_person_id` (minted)."""

    event: Literal["split"] = "split"
    old_person_id: str
    new_person_id: str


class WelfareChanged(_UpdateBase):
    """The DTKS welfare decile (1 = poorest) of the member's person changed from `decile_before`."""

    event: Literal["welfare_changed"] = "welfare_changed"
    decile_before: int | None = Field(ge=1, le=10)
    decile_after: int | None = Field(ge=1, le=10)


#: Any link update, discriminated on `event`.
LinkageUpdate = Annotated[
    Union[LinkCreated, LinkChanged, PersonDied, PersonMoved, Merged, Split, WelfareChanged],  # noqa: UP007
    Field(discriminator="event"),
]
AnyLinkageUpdate = LinkCreated | LinkChanged | PersonDied | PersonMoved | Merged | Split | WelfareChanged

#: Parser for consumers of `linkage.updates.v1` (and the JSON Schema export).
LINKAGE_UPDATE_ADAPTER: TypeAdapter[AnyLinkageUpdate] = TypeAdapter(LinkageUpdate)


def update_event_id(change_id: str, member_key: str, event: UpdateEventType) -> str:
    """The deterministic id of one event: the same change, member and event type give the same id."""
    text = f"{change_id}\x00{member_key}\x00{event.value}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def summary_of(member: LinkedMember) -> DecisionSummary:
    """The decision summary of a member record."""
    return DecisionSummary(
        decision=member.decision,
        band=member.band,
        probability=member.probability,
        person_id=member.person_id,
        person_id_kind=member.person_id_kind,
    )
