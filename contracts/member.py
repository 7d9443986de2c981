"""A family member as enumerated (REGSOSEK22-K items 401-431, a subset)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, computed_field, model_validator
from pydantic_core import PydanticCustomError

from contracts._base import BlankIsNone, InboundModel, Name
from contracts.codes import (
    Difficulty,
    EducationLevel,
    EmploymentStatus,
    MaritalStatus,
    Presence,
    Relationship,
    SchoolParticipation,
    Sector,
    Sex,
)
from contracts.identity import QualityFlag, check_nik, nik_quality_flags

#: The paper questionnaire writes 98 (day, month) or 9998 (year) for an unknown part.
_UNKNOWN_CODES = frozenset({98, 9998})


def _optional_nik(value: str | None) -> str | None:
    return None if value is None else check_nik(value)


#: A structurally valid NIK (16 digits, known province, real date part, serial not 0000), or null.
Nik = Annotated[
    str | None,
    BlankIsNone,
    AfterValidator(_optional_nik),
    Field(json_schema_extra={"pattern": "^[0-9]{16}$"}),
]


def _unknown_to_none(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value in _UNKNOWN_CODES:
        return None
    return value


UnknownIsNone = BeforeValidator(_unknown_to_none)


class BirthDate(InboundModel):
    """Item 406. Each part may be unknown (null; the questionnaire's 98 / 9998 are read as null).

    When all three parts are known they must form a real calendar date; no known part may lie in the future.
    """

    day: Annotated[Annotated[int, Field(ge=1, le=31)] | None, UnknownIsNone] = None
    month: Annotated[Annotated[int, Field(ge=1, le=12)] | None, UnknownIsNone] = None
    year: Annotated[Annotated[int, Field(ge=1880, le=2200)] | None, UnknownIsNone] = None

    @model_validator(mode="after")
    def _real_and_not_future(self) -> Self:
        today = dt.date.today()
        if self.year is not None and self.year > today.year:
            raise PydanticCustomError("future_date", "birth_date year must not be in the future")
        if self.day is not None and self.month is not None and self.year is not None:
            try:
                full = dt.date(self.year, self.month, self.day)
            except ValueError:
                # No date values in the message: error details go to logs and dead letters.
                raise PydanticCustomError(
                    "invalid_date", "birth_date is not a real date (that day does not exist in that month)"
                ) from None
            if full > today:
                raise PydanticCustomError("future_date", "birth_date must not be in the future")
        elif (
            self.month is not None
            and self.year is not None
            and (self.year, self.month)
            > (
                today.year,
                today.month,
            )
        ):
            raise PydanticCustomError("future_date", "birth_date must not be in the future")
        return self

    @property
    def full_date(self) -> dt.date | None:
        """The date when all three parts are known, else None."""
        if self.day is None or self.month is None or self.year is None:
            return None
        return dt.date(self.year, self.month, self.day)


class Education(InboundModel):
    """Items 412-413."""

    school_participation: SchoolParticipation | None = None
    highest_level: EducationLevel | None = None


class Work(InboundModel):
    """Items 416-418, about the week before the visit."""

    worked_last_week: bool | None = None
    main_sector: Sector | None = None
    employment_status: EmploymentStatus | None = None


class Disability(InboundModel):
    """Items 427-430, Washington Group functional difficulty (each 1 none ... 4 cannot do at all)."""

    seeing: Difficulty | None = None
    hearing: Difficulty | None = None
    walking: Difficulty | None = None
    remembering: Difficulty | None = None
    self_care: Difficulty | None = None
    communicating: Difficulty | None = None


class Insurance(InboundModel):
    """Item 431, health insurance and education aid the member holds."""

    bpjs_pbi: bool = Field(default=False, description="BPJS Kesehatan, premium paid by the state (PBI-JK)")
    bpjs_non_pbi: bool = Field(default=False, description="BPJS Kesehatan, self-paying or employer-paid")
    pip: bool = Field(default=False, description="Program Indonesia Pintar education aid")


class Member(InboundModel):
    """One member of the family as enumerated. `quality_flags` are computed warnings, never input."""

    serial: int = Field(ge=1, le=99, description="item 401, member serial within the family")
    name: Name = Field(description="item 402, name as written by the enumerator")
    nik: Nik = Field(default=None, description="item 403, 16-digit NIK; null when not known")
    presence: Presence = Field(description="item 404: 1 lives here, 2 died, 3 moved, 4 new, 5 not found")
    sex: Sex | None = Field(default=None, description="item 405: 1 male, 2 female; null when missing")
    birth_date: BirthDate = Field(default_factory=BirthDate, description="item 406")
    age: int | None = Field(default=None, ge=0, le=130, description="item 407, age in completed years")
    marital_status: MaritalStatus | None = Field(default=None, description="item 408")
    relationship: Relationship = Field(description="item 409, relationship to the head")
    education: Education | None = None
    work: Work | None = None
    disability: Disability | None = None
    insurance: Insurance | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def quality_flags(self) -> tuple[QualityFlag, ...]:
        """Warnings: NIK disagreeing with sex or birth date, placeholder dates, unknown NIK region."""
        sex: Literal["M", "F"] | None = None
        if self.sex is not None:
            sex = "M" if self.sex is Sex.MALE else "F"
        return nik_quality_flags(
            self.nik, sex=sex, day=self.birth_date.day, month=self.birth_date.month, year=self.birth_date.year
        )
