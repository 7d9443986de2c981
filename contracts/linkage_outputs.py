"""Outbound records of the linker service (v1): what downstream consumers read.

Strict on output: every model forbids unknown fields and is frozen, so a typo in a builder fails loudly
instead of silently changing the wire format. Values carry no wall-clock time: re-processing the same
submission yields byte-identical JSON (see `to_canonical_json`).

Topics and keys:
- `linkage.members.v1`  (compacted) key = member key `<family_key>-<serial:02d>`  -> `LinkedMember`
- `linkage.families.v1` (compacted) key = family key (22 digits)                  -> `IntegratedFamily`
- `linkage.review.v1`               key = member key                              -> `ReviewTask`
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from contracts.submission import MAX_REVISION


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def event_time_field(what: str) -> Any:
    """The optional `event_time` of an output record (added inside v1): when the event behind the record
    happened, in UTC; the same time as the record's `ce_time` header and its Kafka timestamp. Left out of
    the JSON when unset, so records written before it existed stay byte-identical."""
    return Field(default=None, exclude_if=lambda v: v is None, description=f"when {what} (UTC)")


class LinkBand(StrEnum):
    """The engine's confidence band for the best master candidate (thresholds from the model artefact)."""

    AUTO_LINK = "auto_link"
    REVIEW = "review"
    NO_MATCH = "no_match"
    #: Added inside v1: a reviewer accepted the candidate (`linkage.review.decisions.v1`). A reviewer's
    #: "none of these" gives `no_match`.
    CLERICAL_LINK = "clerical_link"


class MemberDecision(StrEnum):
    """What the linker decided for one member.

    `linked`: auto-linked to a master person; `pending_review`: a candidate needs a clerk's decision (a
    review task is emitted, the member keeps a minted id meanwhile); `not_linked`: no master person.
    """

    LINKED = "linked"
    PENDING_REVIEW = "pending_review"
    NOT_LINKED = "not_linked"


class PersonIdKind(StrEnum):
    """`master`: derived from the master NIK by a keyed hash; `minted`: kept in the link store."""

    MASTER = "master"
    MINTED = "minted"


class SectoralMatches(_Outbound):
    """Sectoral records linked to the same master person (None when none is known)."""

    dtks_id: str | None = None
    bpjs_id: str | None = None
    # The DTKS welfare decile (`desil`, 1 = poorest) of the DTKS row behind `dtks_id`. Optional inside
    # v1; left out of the JSON when unknown, so records without it stay byte-identical to earlier ones.
    dtks_decile: int | None = Field(default=None, ge=1, le=10, exclude_if=lambda v: v is None)


class LinkedMember(_Outbound):
    """One submitted member and its link to the population master (`linkage.members.v1`)."""

    schema_version: Literal["1"] = "1"
    member_key: str = Field(pattern=r"^\d{22}-\d{2}$")
    family_key: str = Field(pattern=r"^\d{22}$")
    serial: int = Field(ge=1, le=99)
    submission_id: str
    revision: int = Field(ge=1, le=MAX_REVISION)
    decision: MemberDecision
    band: LinkBand
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    match_weight: float | None = None
    runner_up_weight: float | None = None
    explanation: dict[str, float] = Field(default_factory=dict)
    # Only when the member is linked (auto_link); a review candidate's NIK goes to the review task only.
    matched_nik: str | None = Field(default=None, pattern=r"^\d{16}$")
    person_id: str
    person_id_kind: PersonIdKind
    sectoral: SectoralMatches = Field(default_factory=SectoralMatches)
    model_version: str
    event_time: AwareDatetime | None = event_time_field(
        "the event behind this record happened: the enumeration of the revision (`enumerated_at`), or the "
        "master change or review decision that re-linked the member"
    )


class FamilyFlags(_Outbound):
    """Integration flags of a family; the serial lists say which members raised them."""

    kk_mismatch: bool
    members_not_in_master: bool
    deceased_in_master_present_in_survey: bool


class FamilyMemberRef(_Outbound):
    """A member inside the integrated family record."""

    serial: int = Field(ge=1, le=99)
    member_key: str
    person_id: str
    decision: MemberDecision


class IntegratedFamily(_Outbound):
    """The integrated family (`linkage.families.v1`): survey family plus what the master says about it."""

    schema_version: Literal["1"] = "1"
    family_key: str = Field(pattern=r"^\d{22}$")
    submission_id: str
    revision: int = Field(ge=1, le=MAX_REVISION)
    kk_number: str | None = None
    # Distinct KK numbers of the master persons the members were linked to, sorted.
    master_kk_numbers: list[str] = Field(default_factory=list)
    members: list[FamilyMemberRef]
    flags: FamilyFlags
    not_in_master_serials: list[int] = Field(default_factory=list)
    deceased_in_master_serials: list[int] = Field(default_factory=list)
    model_version: str
    event_time: AwareDatetime | None = event_time_field(
        "the event behind this record happened: the enumeration of the revision (`enumerated_at`), or the "
        "master change or review decision that changed a member's link"
    )


class ReviewCandidate(_Outbound):
    """One ranked master candidate of a review task (rank 1 is the one in `candidate_nik`)."""

    rank: int = Field(ge=1, le=99)
    nik: str = Field(pattern=r"^\d{16}$")
    person_id: str | None = None
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    match_weight: float | None = None
    explanation: dict[str, float] = Field(default_factory=dict)


class ReviewTask(_Outbound):
    """A clerical review task for a member in the review band (`linkage.review.v1`)."""

    schema_version: Literal["1"] = "1"
    task_id: str
    member_key: str = Field(pattern=r"^\d{22}-\d{2}$")
    submission_id: str
    revision: int = Field(ge=1, le=MAX_REVISION)
    candidate_nik: str | None = Field(default=None, pattern=r"^\d{16}$")
    candidate_person_id: str | None = None
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    match_weight: float | None = None
    runner_up_weight: float | None = None
    explanation: dict[str, float] = Field(default_factory=dict)
    model_version: str
    # Optional inside v1 and left out of the JSON when unset, so records without them stay byte-identical:
    # the top candidates (3 or more when the engine kept them) and the DTKS decile of the family, which
    # the review queue uses to put families whose aid depends on the link first.
    candidates: list[ReviewCandidate] = Field(default_factory=list, exclude_if=lambda v: not v)
    dtks_decile: int | None = Field(default=None, ge=1, le=10, exclude_if=lambda v: v is None)
    event_time: AwareDatetime | None = event_time_field(
        "the event that raised the task happened: the enumeration of the revision (`enumerated_at`), or "
        "the master change that put the member in the review band"
    )


#: Parsers for consumers of the three output topics (and the JSON Schema export).
LINKED_MEMBER_ADAPTER: TypeAdapter[LinkedMember] = TypeAdapter(LinkedMember)
INTEGRATED_FAMILY_ADAPTER: TypeAdapter[IntegratedFamily] = TypeAdapter(IntegratedFamily)
REVIEW_TASK_ADAPTER: TypeAdapter[ReviewTask] = TypeAdapter(ReviewTask)


def to_canonical_json(record: BaseModel) -> bytes:
    """Deterministic UTF-8 JSON: sorted keys, no spaces, so re-processing gives byte-identical values."""
    data: Any = record.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
