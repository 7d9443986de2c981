"""NIK decoding and masking for the task page (lokal-id's parser; nothing here is logged).

A NIK encodes the issuing district, the birth date (women: day + 40) and the sex. The page shows these
decoded parts for the survey member and each candidate and marks the parts that differ. Raw NIKs are
shown only to roles allowed to see them; everyone else sees the region prefix and a mask.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import lokal
from lokal.wilayah import wilayah_name

from contracts.review_decisions import ReviewerRole

#: Roles that may see a raw NIK on screen.
RAW_NIK_ROLES = frozenset({ReviewerRole.SUPERVISOR})


@dataclass(frozen=True)
class DecodedNik:
    """The parts of a NIK a reviewer compares; None parts could not be read."""

    region_code: str | None
    region: str | None
    birth_date: str | None
    sex: str | None


@functools.lru_cache(maxsize=4096)
def decode_nik(nik: str | None) -> DecodedNik | None:
    """The decoded NIK, or None for a missing or unreadable one."""
    if not nik:
        return None
    info = lokal.parse_nik(nik, lookup_wilayah=wilayah_name)
    if not info.valid:
        return None
    region = ", ".join(p for p in (info.district, info.regency, info.province) if p) or None
    sex = {"L": "M", "P": "F"}.get(info.gender or "")
    return DecodedNik(info.district_code, region, info.birth_date, sex)


def mask_nik(nik: str | None, role: ReviewerRole) -> str:
    """The NIK as the role may see it: raw for supervisors, region prefix and mask for everyone else."""
    if not nik:
        return "—"
    if role in RAW_NIK_ROLES:
        return nik
    return nik[:6] + "•" * 10


def nik_mismatches(member: DecodedNik | None, candidate: DecodedNik | None) -> frozenset[str]:
    """The decoded parts (`region_code`, `birth_date`, `sex`) that differ when both NIKs could be read."""
    if member is None or candidate is None:
        return frozenset()
    return frozenset(
        part for part in ("region_code", "birth_date", "sex") if getattr(member, part) != getattr(candidate, part)
    )
