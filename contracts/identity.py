"""NIK and KK number checks, built on lokal-id's NIK parser.

Two kinds of finding, on purpose:

* errors: the number cannot be a NIK / KK number at all (not 16 digits, unknown province, 00 region parts,
  impossible date part, serial 0000). The message is rejected (validation error).
* quality flags: the number is well formed but disagrees with what else the record says (sex, birth date),
  its date part is a known placeholder (01-07, 31-12), or its region prefix is not in today's Kemendagri
  list (codes from before a region split stay valid on old NIKs). These are carried on the record for the
  linkage to weigh; they never reject a message.

Error messages never contain the number itself (privacy: they end up in logs and dead letters).
"""

from __future__ import annotations

import datetime as dt
import functools
from enum import StrEnum
from typing import Literal

import lokal
from lokal.wilayah import wilayah_name
from pydantic_core import PydanticCustomError

# English messages for lokal-id's issue codes; the field name comes from the error location.
_NIK_ERRORS: dict[str, str] = {
    "format": "NIK must be exactly 16 digits",
    "province": "NIK starts with an unknown province code",
    "wilayah": "NIK region part must not contain 00 as regency or district code",
    "birth_date": "NIK birth date part (DDMMYY, women day + 40) is not a real date",
    "serial": "NIK serial (last 4 digits) must not be 0000",
}

#: Placeholder birth dates (day, month) that registries write when the real date is unknown.
PLACEHOLDER_DAY_MONTHS: frozenset[tuple[int, int]] = frozenset({(1, 7), (31, 12)})


class QualityFlag(StrEnum):
    """A warning carried on a record: well-formed data that looks doubtful. Never a rejection."""

    #: The NIK encodes a sex (day + 40 for women) different from the stated sex.
    NIK_SEX_MISMATCH = "nik_sex_mismatch"
    #: The NIK's DDMMYY part disagrees with the known parts of the stated birth date.
    NIK_BIRTH_DATE_MISMATCH = "nik_birth_date_mismatch"
    #: The NIK's date part is a placeholder (01-07 or 31-12): agreement on it is weak evidence.
    NIK_BIRTH_DATE_PLACEHOLDER = "nik_birth_date_placeholder"
    #: The NIK's regency/district prefix is not in today's Kemendagri list (maybe a pre-split code).
    NIK_REGION_UNKNOWN = "nik_region_unknown"
    #: The stated birth date is a placeholder (01-07 or 31-12).
    BIRTH_DATE_PLACEHOLDER = "birth_date_placeholder"


def check_nik(value: str) -> str:
    """Return `value` if it has a valid NIK structure, else raise a `invalid_nik` validation error."""
    info = lokal.parse_nik(value) if value.isascii() and value.isdigit() else None
    if info is None or len(value) != 16:
        raise PydanticCustomError("invalid_nik", _NIK_ERRORS["format"])
    if info.errors:
        reasons = "; ".join(_NIK_ERRORS.get(issue.code, issue.code) for issue in info.errors)
        raise PydanticCustomError("invalid_nik", reasons)
    return value


def _two_digit_year_date(day: int, month: int, yy: int, as_of: dt.date) -> dt.date | None:
    # Same century rule as lokal-id: a two-digit year not after as_of's year is 20yy, otherwise 19yy.
    year = 2000 + yy if yy <= as_of.year % 100 else 1900 + yy
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _kk_structure_problems(value: str) -> list[str]:
    if len(value) != 16 or not (value.isascii() and value.isdigit()):
        raise PydanticCustomError("invalid_kk", "KK number must be exactly 16 digits")
    problems: list[str] = []
    if value[:2] not in lokal.PROVINCES:
        problems.append("KK number starts with an unknown province code")
    if value[2:4] == "00" or value[4:6] == "00":
        problems.append("KK number region part must not contain 00 as regency or district code")
    return problems


def _raise_kk(problems: list[str], value: str) -> str:
    if value[12:] == "0000":
        problems.append("KK number serial (last 4 digits) must not be 0000")
    if problems:
        raise PydanticCustomError("invalid_kk", "; ".join(problems))
    return value


def check_kk_number(value: str, as_of: dt.date | None = None) -> str:
    """Return `value` if it has a valid KK number structure, else raise a `invalid_kk` validation error.

    A KK number is the 6-digit Kemendagri issuing district + the DDMMYY issue date + a 4-digit serial.
    The issue date's century and the "not in the future" rule are judged as of `as_of`: a message's own
    date (a submission's enumeration date) so that a replay years later gets the same verdict. Only
    records that carry no date of their own (Dukcapil master rows) leave it to default to today.
    """
    problems = _kk_structure_problems(value)
    reference = dt.date.today() if as_of is None else as_of
    issued = _two_digit_year_date(int(value[6:8]), int(value[8:10]), int(value[10:12]), reference)
    if issued is None:
        problems.append("KK number issue date part (DDMMYY) is not a real date")
    elif issued > reference:
        problems.append("KK number issue date part (DDMMYY) is in the future")
    return _raise_kk(problems, value)


def check_kk_structure(value: str) -> str:
    """`check_kk_number` without the date part's rules, for a message whose own date is not known (it is
    being rejected for that already): the other problems are still reported."""
    return _raise_kk(_kk_structure_problems(value), value)


# Flags are recomputed on every access of a model's `quality_flags`; the inputs are small and repeat.
@functools.lru_cache(maxsize=65_536)
def nik_quality_flags(
    nik: str | None,
    *,
    sex: Literal["M", "F"] | None,
    day: int | None,
    month: int | None,
    year: int | None,
) -> tuple[QualityFlag, ...]:
    """Warnings for a record whose NIK (already structurally valid, or None) and stated data disagree.

    Only the known parts of the birth date are compared, and years by their last two digits, because the
    NIK's century is ambiguous.
    """
    flags: list[QualityFlag] = []
    if day is not None and month is not None and (day, month) in PLACEHOLDER_DAY_MONTHS:
        flags.append(QualityFlag.BIRTH_DATE_PLACEHOLDER)
    if nik is None:
        return tuple(flags)
    info = lokal.parse_nik(nik, lookup_wilayah=wilayah_name)
    if not info.valid:
        return tuple(flags)
    raw_day = int(nik[6:8])
    nik_day = raw_day - 40 if raw_day > 40 else raw_day
    nik_month, nik_yy = int(nik[8:10]), int(nik[10:12])
    if sex is not None and info.gender is not None and (info.gender == "P") != (sex == "F"):
        flags.append(QualityFlag.NIK_SEX_MISMATCH)
    if (
        (day is not None and day != nik_day)
        or (month is not None and month != nik_month)
        or (year is not None and year % 100 != nik_yy)
    ):
        flags.append(QualityFlag.NIK_BIRTH_DATE_MISMATCH)
    if (nik_day, nik_month) in PLACEHOLDER_DAY_MONTHS:
        flags.append(QualityFlag.NIK_BIRTH_DATE_PLACEHOLDER)
    if any(w.code == "wilayah_unknown" for w in info.warnings):
        flags.append(QualityFlag.NIK_REGION_UNKNOWN)
    return tuple(flags)


def not_in_future(value: dt.date, field: str) -> dt.date:
    """Raise a `future_date` validation error when a calendar date lies after today."""
    if value > dt.date.today():
        raise PydanticCustomError("future_date", "{field} must not be in the future", {"field": field})
    return value
