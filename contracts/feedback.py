"""Field feedback (v1), the message on `field.feedback.v1`: what an enumerator team can fix in the village.

The linker raises an item when it links a family revision and finds something the field can check while
still there (the six `FeedbackKind`s), and closes it when a later revision of the family no longer
raises it. The gateway serves a team its own items (`GET /v1/feedback`, docs/gateway.md).

Privacy: an item carries no NIK, KK number or name, not even the team's own: the team knows its family
by the family key and the member by its line number (`serial`), and the `message` says what to check.

Key and identity: `item_id = feedback_item_id(family_key, kind, serial)`, e.g.
`3603010001000100001001/nik_not_in_master/03`, or `<family key>/duplicate_family` for the family-level
kind. One item per family, kind and member: it keeps its id while it is opened, closed and raised again,
so the compacted topic holds its latest state. The topic is partitioned by the family key in front of
the id (`contracts.partitioning`), the catalogue's co-partitioning rule.

Values carry no wall-clock time: re-processing the same revision yields byte-identical JSON.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contracts.submission import MAX_REVISION


class FeedbackKind(StrEnum):
    """What the field should check. Adding a kind is a new topic version (docs/contracts.md)."""

    #: The member's NIK is not in the Dukcapil master (a typo, or a NIK not yet registered).
    NIK_NOT_IN_MASTER = "nik_not_in_master"
    #: The NIK is in the master but belongs to another person: the member was linked (by name, birth
    #: date, family) to a different NIK, or the NIK's holder has another name or birth date.
    NIK_OF_ANOTHER_PERSON = "nik_of_another_person"
    #: The member lives in the household (presence 1 or 4) but the linked master person is dead.
    DEAD_IN_MASTER = "dead_in_master"
    #: The linked master person's family card (KK) differs from the KK number recorded for the family.
    KK_MISMATCH = "kk_mismatch"
    #: The family's members were already submitted under another family key (family-level item).
    DUPLICATE_FAMILY = "duplicate_family"
    #: A member living in the household was found in the master neither by NIK nor by name and birth date.
    MEMBER_NOT_FOUND = "member_not_found"


class FeedbackStatus(StrEnum):
    """`open`: raised by the family's latest revision; `closed`: a later revision no longer raises it."""

    OPEN = "open"
    CLOSED = "closed"


#: Kinds about the whole family; they carry no member.
FAMILY_KINDS = frozenset({FeedbackKind.DUPLICATE_FAMILY})


def feedback_item_id(family_key: str, kind: FeedbackKind, serial: int | None) -> str:
    """The item's id and Kafka key: `<family key>/<kind>[/<serial:02d>]` (no personal data)."""
    if serial is None:
        return f"{family_key}/{kind.value}"
    return f"{family_key}/{kind.value}/{serial:02d}"


class FieldFeedback(BaseModel):
    """One feedback item for an enumerator team (`field.feedback.v1`, key = `item_id`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1"] = "1"
    item_id: str = Field(
        pattern=r"^\d{22}/[a-z_]+(/\d{2})?$", description="<family key>/<kind>[/<serial>]; the Kafka key"
    )
    team: str = Field(
        min_length=1, max_length=64, description="the enumerator team that owns the family (its first revision)"
    )
    family_key: str = Field(pattern=r"^\d{22}$")
    member_key: str | None = Field(
        default=None, pattern=r"^\d{22}-\d{2}$", description="null for a family-level kind (duplicate_family)"
    )
    serial: int | None = Field(default=None, ge=1, le=99, description="the member's line number in the questionnaire")
    kind: FeedbackKind
    status: FeedbackStatus
    raised_revision: int = Field(ge=1, le=MAX_REVISION, description="the family revision that raised the item")
    raised_submission_id: str
    closed_revision: int | None = Field(
        default=None, ge=1, le=MAX_REVISION, description="the revision that no longer raised it (closed items)"
    )
    closed_submission_id: str | None = None
    message: str = Field(max_length=300, description="what to check, for the enumerator; no personal values")
    #: duplicate_family only, and only when the other family belongs to the same team: its family key.
    other_family_key: str | None = Field(default=None, pattern=r"^\d{22}$", exclude_if=lambda v: v is None)


#: The parser for consumers of `field.feedback.v1` (and the JSON Schema export).
FIELD_FEEDBACK_ADAPTER: TypeAdapter[FieldFeedback] = TypeAdapter(FieldFeedback)
