"""Family-level parts of a FamilySubmission: the REGSOSEK22-K family key, address, housing, programmes and
assets."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, StringConstraints

from contracts._base import InboundModel, OptionalRtRw
from contracts.codes import (
    CookingFuel,
    Electricity,
    FloorMaterial,
    RoofMaterial,
    Tenure,
    Toilet,
    WallMaterial,
    WaterSource,
)

FAMILY_KEY_LENGTH = 22


class FamilyKey(InboundModel):
    """The REGSOSEK22-K family key: BPS region codes, SLS, building and family serials (22 digits)."""

    province: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] = Field(
        description="BPS province code, 2 digits"
    )
    regency: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] = Field(
        description="BPS regency code within the province, 2 digits"
    )
    district: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")] = Field(
        description="BPS district code within the regency, 3 digits"
    )
    village: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")] = Field(
        description="BPS village code within the district, 3 digits"
    )
    sls: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] = Field(
        description="SLS (neighbourhood area) code, 4 digits"
    )
    sub_sls: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] = Field(description="sub-SLS code, 2 digits")
    building_serial: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")] = Field(
        description="building serial within the sub-SLS, 3 digits"
    )
    family_serial: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")] = Field(
        description="family serial within the building, 3 digits"
    )

    @property
    def key(self) -> str:
        """The 22-digit family key string, e.g. "3603010001000100001001"."""
        return (
            f"{self.province}{self.regency}{self.district}{self.village}"
            f"{self.sls}{self.sub_sls}{self.building_serial}{self.family_serial}"
        )

    @property
    def bps_village_code(self) -> str:
        """The full 10-digit BPS village code (province + regency + district + village)."""
        return f"{self.province}{self.regency}{self.district}{self.village}"

    def member_key(self, serial: int) -> str:
        """The member key `<family_key>-<serial, 2 digits>`."""
        if not 1 <= serial <= 99:
            raise ValueError("member serial must be between 1 and 99")
        return f"{self.key}-{serial:02d}"

    @classmethod
    def parse(cls, key: str) -> Self:
        """Split a 22-digit family key string back into its parts (raises ValueError when malformed)."""
        if len(key) != FAMILY_KEY_LENGTH or not (key.isascii() and key.isdigit()):
            raise ValueError("family key must be exactly 22 digits")
        return cls(
            province=key[0:2],
            regency=key[2:4],
            district=key[4:7],
            village=key[7:10],
            sls=key[10:14],
            sub_sls=key[14:16],
            building_serial=key[16:19],
            family_serial=key[19:22],
        )


class Address(InboundModel):
    """Item 107, the family's address within its SLS."""

    street: str | None = Field(default=None, max_length=200, description="street line")
    rt: OptionalRtRw = Field(default=None, description="RT number, 3 digits")
    rw: OptionalRtRw = Field(default=None, description="RW number, 3 digits")


class Housing(InboundModel):
    """Items 301-310, the dwelling. Every item may be missing (not asked or not answered)."""

    tenure: Tenure | None = None
    floor_area_m2: float | None = Field(default=None, ge=1, le=10_000, description="floor area in m2")
    floor_material: FloorMaterial | None = None
    wall_material: WallMaterial | None = None
    roof_material: RoofMaterial | None = None
    water_source: WaterSource | None = None
    electricity: Electricity | None = None
    cooking_fuel: CookingFuel | None = None
    toilet: Toilet | None = None


class Programmes(InboundModel):
    """Item 501, social programmes the family received in the last year."""

    sembako: bool = Field(default=False, description="Sembako / BPNT food aid")
    pkh: bool = Field(default=False, description="Program Keluarga Harapan conditional cash transfer")
    blt_dana_desa: bool = Field(default=False, description="village-fund direct cash aid")
    electricity_subsidy: bool = Field(default=False, description="subsidised electricity tariff")
    regional_aid: bool = Field(default=False, description="aid from the provincial or regency government")


class Assets(InboundModel):
    """Items 502-506, assets and access (a subset)."""

    refrigerator: bool = False
    motorcycle: bool = False
    car: bool = False
    smartphone: bool = False
    land_owned: bool = False
    internet_access: bool = False
    bank_account: bool = False
