"""Sectoral databases linked besides the master, one model per source, each with its own fields and ids
(Indonesian column names as the sources use them; see docs/data-model.md). Discriminated on `source`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, computed_field

from contracts._base import BlankIsNone, InboundModel, KemendagriVillageCode, Name, safe_id
from contracts.identity import QualityFlag, nik_quality_flags, not_in_future
from contracts.member import Nik


def _birth_date_not_future(value: dt.date | None) -> dt.date | None:
    return None if value is None else not_in_future(value, "birth date")


OptionalBirthDate = Annotated[dt.date | None, BlankIsNone, AfterValidator(_birth_date_not_future)]


class DtksRecord(InboundModel):
    """A row of DTKS (Kemensos social-welfare data)."""

    source: Literal["dtks"] = "dtks"
    schema_version: Literal["1"] = "1"
    id_dtks: Annotated[str, safe_id(40)] = Field(description="DTKS person id")
    nik: Nik = None
    nama: Name
    jenis_kelamin: Annotated[Literal["L", "P"] | None, BlankIsNone] = Field(
        default=None, description="L laki-laki / P perempuan"
    )
    tanggal_lahir: OptionalBirthDate = None
    kode_desa: KemendagriVillageCode
    alamat: str = Field(default="", max_length=200)
    id_keluarga: Annotated[str, safe_id(40)] = Field(description="DTKS family id")
    desil: int = Field(ge=1, le=10, description="welfare decile, 1 poorest")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def quality_flags(self) -> tuple[QualityFlag, ...]:
        """Warnings: NIK disagreeing with sex or birth date, placeholder dates, unknown NIK region."""
        sex: Literal["M", "F"] | None = (
            None if self.jenis_kelamin is None else ("M" if self.jenis_kelamin == "L" else "F")
        )
        d = self.tanggal_lahir
        return nik_quality_flags(
            self.nik,
            sex=sex,
            day=None if d is None else d.day,
            month=None if d is None else d.month,
            year=None if d is None else d.year,
        )


class BpjsRecord(InboundModel):
    """A BPJS Kesehatan PBI-JK (state-paid premium) member."""

    source: Literal["bpjs"] = "bpjs"
    schema_version: Literal["1"] = "1"
    noka: str = Field(pattern=r"^[0-9]{13}$", description="13-digit BPJS card number")
    nik: Nik = None
    nama_peserta: Name
    tgl_lahir: OptionalBirthDate = None
    jk: Annotated[Literal["1", "2"] | None, BlankIsNone] = Field(default=None, description="1 male/2 female")
    kd_desa: Annotated[KemendagriVillageCode | None, BlankIsNone] = None
    segmen: Literal["PBI-APBN", "PBI-APBD"]
    faskes: Annotated[str, safe_id(20)] = Field(description="first-level clinic code")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def quality_flags(self) -> tuple[QualityFlag, ...]:
        """Warnings: NIK disagreeing with sex or birth date, placeholder dates, unknown NIK region."""
        sex: Literal["M", "F"] | None = None if self.jk is None else ("M" if self.jk == "1" else "F")
        d = self.tgl_lahir
        return nik_quality_flags(
            self.nik,
            sex=sex,
            day=None if d is None else d.day,
            month=None if d is None else d.month,
            year=None if d is None else d.year,
        )


#: A record of any sectoral source, discriminated on `source`.
SectoralRecord = Annotated[Union[DtksRecord, BpjsRecord], Field(discriminator="source")]  # noqa: UP007

#: The one parser of sectoral records: `SECTORAL_RECORD_ADAPTER.validate_json(raw_bytes)`.
SECTORAL_RECORD_ADAPTER: TypeAdapter[DtksRecord | BpjsRecord] = TypeAdapter(
    SectoralRecord, config=ConfigDict(hide_input_in_errors=True)
)

__all__ = ["SECTORAL_RECORD_ADAPTER", "BpjsRecord", "DtksRecord", "SectoralRecord"]
