"""Dukcapil population master: a PopulationRecord is one row of the master (one person); a
PopulationChange is one event on `dukcapil.population.changes.v1`, discriminated on `change`."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal, Self, Union

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, computed_field, model_validator
from pydantic_core import PydanticCustomError

from contracts._base import (
    InboundModel,
    KemendagriDistrictCode,
    KemendagriVillageCode,
    Name,
    OptionalRtRw,
    safe_id,
)
from contracts.identity import QualityFlag, check_kk_number, check_nik, nik_quality_flags, not_in_future


class Religion(StrEnum):
    """Religion as written in the Dukcapil master."""

    ISLAM = "ISLAM"
    KRISTEN = "KRISTEN"
    KATOLIK = "KATOLIK"
    HINDU = "HINDU"
    BUDDHA = "BUDDHA"
    KONGHUCU = "KONGHUCU"


class MasterMaritalStatus(StrEnum):
    """Marital status as written in the Dukcapil master."""

    BELUM_KAWIN = "BELUM KAWIN"
    KAWIN = "KAWIN"
    CERAI_HIDUP = "CERAI HIDUP"
    CERAI_MATI = "CERAI MATI"


class FamilyRole(StrEnum):
    """Relationship in the family (SHDK) as written on the KK."""

    KEPALA_KELUARGA = "KEPALA KELUARGA"
    ISTRI = "ISTRI"
    ANAK = "ANAK"
    ORANG_TUA = "ORANG TUA"
    MERTUA = "MERTUA"
    CUCU = "CUCU"
    FAMILI_LAIN = "FAMILI LAIN"


def _birth_date_not_future(value: dt.date) -> dt.date:
    return not_in_future(value, "birth_date")


def _effective_date_not_future(value: dt.date) -> dt.date:
    return not_in_future(value, "effective_date")


class PopulationRecord(InboundModel):
    """One person in the Dukcapil master. The NIK and KK number must be structurally valid."""

    nik: Annotated[str, AfterValidator(check_nik)] = Field(json_schema_extra={"pattern": "^[0-9]{16}$"})
    kk_number: Annotated[str, AfterValidator(check_kk_number)] = Field(json_schema_extra={"pattern": "^[0-9]{16}$"})
    full_name: Name
    sex: Literal["M", "F"]
    birth_place: str = Field(default="", max_length=100)
    birth_date: Annotated[dt.date, AfterValidator(_birth_date_not_future)]
    religion: Religion | None = None
    marital_status: MasterMaritalStatus | None = None
    relationship: FamilyRole | None = None
    village_code: KemendagriVillageCode = Field(description="Kemendagri village code, 10 digits")
    district_code: KemendagriDistrictCode = Field(description="Kemendagri district code, 6 digits")
    address: str = Field(default="", max_length=200, description="street line")
    rt: OptionalRtRw = None
    rw: OptionalRtRw = None
    status: Literal["alive", "dead"] = "alive"
    moved_out: bool = Field(default=False, description="moved out of the regency; the address is outdated")

    @model_validator(mode="after")
    def _district_contains_village(self) -> Self:
        if not self.village_code.startswith(self.district_code):
            raise PydanticCustomError("inconsistent_fields", "district_code must be the first 6 digits of village_code")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def quality_flags(self) -> tuple[QualityFlag, ...]:
        """Warnings: NIK disagreeing with sex or birth date, placeholder dates, unknown NIK region."""
        d = self.birth_date
        return nik_quality_flags(self.nik, sex=self.sex, day=d.day, month=d.month, year=d.year)


class _ChangeBase(InboundModel):
    schema_version: Literal["1"]
    change_id: Annotated[str, safe_id(64)] = Field(
        description="unique id of this change event; letters, digits and . _ : - only"
    )
    effective_date: Annotated[dt.date, AfterValidator(_effective_date_not_future)] = Field(
        description="the day the change took effect in the register"
    )
    record: PopulationRecord = Field(description="the person's record after the change")


class PersonBorn(_ChangeBase):
    """A newborn was registered."""

    change: Literal["born"]


class PersonDied(_ChangeBase):
    """A death was registered; `record.status` must be dead."""

    change: Literal["died"]

    @model_validator(mode="after")
    def _record_is_dead(self) -> Self:
        if self.record.status != "dead":
            raise PydanticCustomError("inconsistent_fields", "record.status must be 'dead' in a 'died' change")
        return self


class PersonMoved(_ChangeBase):
    """The person moved; the record carries the new address."""

    change: Literal["moved"]
    previous_village_code: KemendagriVillageCode | None = None


class PersonCorrected(_ChangeBase):
    """Data in the record was corrected (e.g. a misspelt name or wrong birth date)."""

    change: Literal["corrected"]
    corrected_fields: tuple[str, ...] = Field(default=(), description="record fields changed")


class KkChanged(_ChangeBase):
    """The person was moved to another family card (split, divorce, head died, move)."""

    change: Literal["kk_changed"]
    previous_kk_number: Annotated[str, AfterValidator(check_kk_number)] | None = None


#: Any population change, discriminated on `change`. A future schema version gets its own models here.
PopulationChange = Annotated[
    Union[PersonBorn, PersonDied, PersonMoved, PersonCorrected, KkChanged],  # noqa: UP007
    Field(discriminator="change"),
]

#: The one parser of inbound population changes: `POPULATION_CHANGE_ADAPTER.validate_json(raw_bytes)`.
AnyPopulationChange = PersonBorn | PersonDied | PersonMoved | PersonCorrected | KkChanged
POPULATION_CHANGE_ADAPTER: TypeAdapter[AnyPopulationChange] = TypeAdapter(
    PopulationChange, config=ConfigDict(hide_input_in_errors=True)
)

#: Parser for master rows read one by one (e.g. from JSON Lines).
POPULATION_RECORD_ADAPTER: TypeAdapter[PopulationRecord] = TypeAdapter(PopulationRecord)
