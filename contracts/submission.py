"""FamilySubmission: one family's REGSOSEK22-K questionnaire, the message on `regsosek.submissions.v1`.

Parse inbound bytes with `FAMILY_SUBMISSION_ADAPTER.validate_json(...)` (or `decode_family_submission`,
which also classifies failures for the dead-letter topic). The adapter is a union discriminated on
`schema_version`, so a v2 model can be added beside v1 without touching consumers' parse calls.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, AwareDatetime, Field, TypeAdapter, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts._base import BlankIsNone, InboundModel, Name, safe_id
from contracts.codes import KkCode, Presence
from contracts.family import Address, Assets, FamilyKey, Housing, Programmes
from contracts.identity import check_kk_number, check_kk_structure
from contracts.member import Member

#: Most members one submission may list (member serials are two digits).
MAX_MEMBERS = 99

#: The presence codes of members who belong to the family now; `member_count` (item 112) counts them.
LIVING_PRESENCE = frozenset({Presence.LIVES_HERE, Presence.NEW_MEMBER})

#: Highest revision a submission may carry: the largest signed 32-bit integer, so every store and every
#: downstream consumer (32-bit integer columns included) can hold it. Stores keep revisions as 64-bit.
MAX_REVISION = 2**31 - 1
#: Largest step from a family's current revision (0 before its first) to a new one. A bigger jump is
#: refused by the linker (dead letter `revision_jump`): one request must not make a family unrevisable.
MAX_REVISION_STEP = 100

#: Enumerator tablets' clocks drift; a timestamp this far ahead of our clock is still accepted.
CLOCK_SKEW_TOLERANCE = dt.timedelta(minutes=5)


def _not_future_timestamp(value: dt.datetime) -> dt.datetime:
    if value > dt.datetime.now(dt.UTC) + CLOCK_SKEW_TOLERANCE:
        raise PydanticCustomError("future_date", "enumerated_at must not be in the future")
    return value


#: A KK number (16 digits: region, DDMMYY issue date, serial not 0000), or null. Its structure is checked by
#: `FamilySubmissionV1._kk_structure`, as of the submission's own enumeration date.
KkNumber = Annotated[str | None, BlankIsNone, Field(json_schema_extra={"pattern": "^[0-9]{16}$"})]


class FamilySubmissionV1(InboundModel):
    """Version 1 of a family's questionnaire submission. The Kafka key is `family_key.key`."""

    schema_version: Literal["1"] = Field(description="contract version of this message")
    submission_id: Annotated[str, safe_id(64)] = Field(
        description="unique per submission and revision; letters, digits and . _ : - only"
    )
    revision: int = Field(
        ge=1,
        le=MAX_REVISION,
        description=f"1 first; a newer revision replaces older ones; at most {MAX_REVISION_STEP} above the "
        "family's current revision (the linker refuses bigger jumps)",
    )
    enumerator_code: Annotated[str, safe_id(32)] = Field(
        description="field officer who enumerated; letters, digits and . _ : - only"
    )
    enumerated_at: Annotated[AwareDatetime, AfterValidator(_not_future_timestamp)] = Field(
        description="time of the visit, with its UTC offset; not in the future"
    )
    family_key: FamilyKey
    address: Address = Field(default_factory=Address, description="item 107")
    kk_number: KkNumber = Field(default=None, description="item 114, the family card number; null if unknown")
    kk_code: KkCode | None = Field(default=None, description="item 115: 0 matches, 1 parent family, 2 split")
    head_name: Name = Field(description="item 108, name of the head of the family")
    member_count: int = Field(
        ge=0, le=MAX_MEMBERS, description="item 112: the members living in the family (presence 1 or 4)"
    )
    housing: Housing | None = None
    programmes: Programmes | None = None
    assets: Assets | None = None
    members: tuple[Member, ...] = Field(min_length=1, max_length=MAX_MEMBERS, description="items 401-431 per member")

    @field_validator("kk_number")
    @classmethod
    def _kk_structure(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The issue date is judged as of the visit, never today, so a replay gets the same verdict.
        if value is None:
            return None
        enumerated_at = info.data.get("enumerated_at")
        if enumerated_at is None:  # enumerated_at is invalid: the message is refused for that already
            return check_kk_structure(value)
        return check_kk_number(value, as_of=enumerated_at.date())

    @field_validator("members", mode="before")
    @classmethod
    def _bounded(cls, value: object) -> object:
        # Refuse an oversized list before its members are validated: rejecting it then costs one error,
        # not one (or several) per member.
        if isinstance(value, list | tuple) and len(value) > MAX_MEMBERS:
            raise PydanticCustomError(
                "too_long", "members should have at most {max_length} items", {"max_length": MAX_MEMBERS}
            )
        return value

    @field_validator("members")
    @classmethod
    def _serials_unique_and_counted(cls, members: tuple[Member, ...], info: ValidationInfo) -> tuple[Member, ...]:
        if len({member.serial for member in members}) != len(members):
            raise PydanticCustomError(
                "duplicate_member_serial", "members: a member serial appears more than once; serials must be unique"
            )
        member_count = info.data.get("member_count")
        if member_count is not None and member_count != sum(m.presence in LIVING_PRESENCE for m in members):
            raise PydanticCustomError(
                "member_count_mismatch",
                "member_count must equal the number of members living in the family (presence 1 or 4)",
            )
        return members

    @property
    def kafka_key(self) -> bytes:
        """The Kafka message key: the 22-digit family key as ASCII (no personal data in keys)."""
        return self.family_key.key.encode("ascii")

    def member_key(self, member: Member) -> str:
        """The member key `<family_key>-<serial:02d>` of one of this family's members."""
        return self.family_key.member_key(member.serial)


#: The current version; code that builds submissions uses this name.
FamilySubmission = FamilySubmissionV1

#: Any supported version of an inbound family submission, discriminated on `schema_version`.
FamilySubmissionIn = Annotated[Union[FamilySubmissionV1], Field(discriminator="schema_version")]  # noqa: UP007

#: The one parser of inbound submissions: `FAMILY_SUBMISSION_ADAPTER.validate_json(raw_bytes)`.
#: Its ValidationError text may echo input values (pydantic refuses an adapter config while the union has
#: one member): never log `str(error)`; use `contracts.dead_letter.field_errors(error)`, which omits them.
FAMILY_SUBMISSION_ADAPTER: TypeAdapter[FamilySubmissionV1] = TypeAdapter(FamilySubmissionIn)
