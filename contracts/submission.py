"""FamilySubmission: one family's REGSOSEK22-K questionnaire, the message on `regsosek.submissions.v1`.

Parse inbound bytes with `FAMILY_SUBMISSION_ADAPTER.validate_json(...)` (or `decode_family_submission`,
which also classifies failures for the dead-letter topic). The adapter is a union discriminated on
`schema_version`, so a v2 model can be added beside v1 without touching consumers' parse calls.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, AwareDatetime, Field, TypeAdapter, field_validator
from pydantic_core import PydanticCustomError

from contracts._base import BlankIsNone, InboundModel, Name
from contracts.codes import KkCode
from contracts.family import Address, Assets, FamilyKey, Housing, Programmes
from contracts.identity import check_kk_number
from contracts.member import Member

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


def _optional_kk(value: str | None) -> str | None:
    return None if value is None else check_kk_number(value)


#: A structurally valid KK number (16 digits: region, DDMMYY issue date, serial not 0000), or null.
KkNumber = Annotated[
    str | None,
    BlankIsNone,
    AfterValidator(_optional_kk),
    Field(json_schema_extra={"pattern": "^[0-9]{16}$"}),
]


class FamilySubmissionV1(InboundModel):
    """Version 1 of a family's questionnaire submission. The Kafka key is `family_key.key`."""

    schema_version: Literal["1"] = Field(description="contract version of this message")
    submission_id: str = Field(min_length=1, max_length=64, description="unique per submission and revision")
    revision: int = Field(
        ge=1, le=MAX_REVISION,
        description=f"1 first; a newer revision replaces older ones; at most {MAX_REVISION_STEP} above the "
        "family's current revision (the linker refuses bigger jumps)",
    )  # fmt: skip
    enumerator_code: str = Field(min_length=1, max_length=32, description="field officer who enumerated")
    enumerated_at: Annotated[AwareDatetime, AfterValidator(_not_future_timestamp)] = Field(
        description="time of the visit, with its UTC offset; not in the future"
    )
    family_key: FamilyKey
    address: Address = Field(default_factory=Address, description="item 107")
    kk_number: KkNumber = Field(default=None, description="item 114, the family card number; null if unknown")
    kk_code: KkCode | None = Field(default=None, description="item 115: 0 matches, 1 parent family, 2 split")
    head_name: Name = Field(description="item 108, name of the head of the family")
    member_count: int = Field(ge=0, le=99, description="item 112, number of family members")
    housing: Housing | None = None
    programmes: Programmes | None = None
    assets: Assets | None = None
    members: tuple[Member, ...] = Field(min_length=1, max_length=99, description="items 401-431 per member")

    @field_validator("members")
    @classmethod
    def _serials_unique(cls, members: tuple[Member, ...]) -> tuple[Member, ...]:
        seen: set[int] = set()
        for member in members:
            if member.serial in seen:
                raise PydanticCustomError(
                    "duplicate_member_serial",
                    "members: member serial {serial} appears more than once; serials must be unique",
                    {"serial": member.serial},
                )
            seen.add(member.serial)
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
