"""NIK cleaning and the agreement of a NIK with the stated birth date and sex.

A NIK is PPKKCC DDMMYY SSSS (women: day + 40). Parsing goes through lokal-id; the century of the
2-digit year is ambiguous, so agreement is judged on day, month and the 2-digit year only.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

import lokal
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from linkage.normalise.columnar import map_distinct

_NON_DIGIT = re.compile(r"\D")


def clean_nik(raw: str | None) -> str | None:
    """The 16-digit NIK, or None when missing, malformed or a sentinel.

    Sentinels are values registers use for "unknown": one digit repeated after the first
    (1000000000000000, 9999999999999999), an all-zero region, birth date or serial part.
    """
    if raw is None:
        return None
    digits = _NON_DIGIT.sub("", str(raw))
    if len(digits) != 16:
        return None
    if len(set(digits[1:])) == 1 or digits[:6] == "000000" or digits[6:12] == "000000":
        return None
    if digits[12:] == "0000":
        return None
    return digits


def nik_birth_and_sex(nik: str) -> tuple[str | None, str | None]:
    """(`DDMMYY` birth date with the female offset removed, `M`/`F`) implied by a NIK, None if invalid."""
    return _implied(nik[6:12])


@lru_cache(maxsize=131_072)
def _implied(ddmmyy: str) -> tuple[str | None, str | None]:
    # Date and sex depend only on the DDMMYY part: parse it once behind a fixed valid region and serial
    # (a master of a million people has only tens of thousands of distinct birth dates).
    info = lokal.parse_nik(f"360312{ddmmyy}0001")
    sex = {"L": "M", "P": "F"}.get(info.gender or "")
    if info.birth_date is None:
        return None, sex
    y, m, d = info.birth_date.split("-")
    return f"{d}{m}{y[2:]}", sex


def nik_consistency(nik: str | None, birth_date: date | None, birth_year: int | None, sex: str | None) -> str | None:
    """`Y` if the NIK's implied birth date and sex agree with the stated ones, `N` if any disagree.

    None when there is no NIK or nothing stated to check against. Only the parts that are stated are
    compared (a year-only record is checked on the 2-digit year).
    """
    if nik is None or (birth_date is None and birth_year is None and sex is None):
        return None
    implied_dmy, implied_sex = nik_birth_and_sex(nik)
    if sex is not None and implied_sex is not None and sex != implied_sex:
        return "N"
    if birth_date is not None:
        stated = birth_date.strftime("%d%m%y")
        if implied_dmy != stated:
            return "N"
    elif birth_year is not None and (implied_dmy is None or implied_dmy[4:] != f"{birth_year % 100:02d}"):
        return "N"
    return "Y"


def _implied_of_part(ddmmyy: object) -> tuple[str | None, str | None]:
    return _implied(str(ddmmyy)) if ddmmyy is not None else (None, None)


def nik_consistency_column(nik: pa.Array, stated_ddmmyy: pa.Array, birth_year: pa.Array, sex: pa.Array) -> pa.Array:
    """`nik_consistency` of whole columns, with the same rules (tested equal row by row).

    `nik` holds cleaned NIKs, `stated_ddmmyy` the stated birth date as `strftime("%d%m%y")` (null when
    there is no date), `birth_year` the year (only read where there is no date), `sex` `M`/`F`.
    """
    implied_dmy, implied_sex = map_distinct(
        pc.utf8_slice_codeunits(nik, 6, 12), _implied_of_part, [pa.string(), pa.string()]
    )
    (stated_yy,) = map_distinct(birth_year, lambda y: (f"{y % 100:02d}" if y is not None else None,), [pa.string()])

    def valid(a: pa.Array) -> npt.NDArray[np.bool_]:
        valid_rows: npt.NDArray[np.bool_] = a.is_valid().to_numpy(zero_copy_only=False)
        return valid_rows

    def differs(a: pa.Array, b: pa.Array) -> npt.NDArray[np.bool_]:
        different: npt.NDArray[np.bool_] = pc.fill_null(pc.not_equal(a, b), False).to_numpy(zero_copy_only=False)
        return different

    has_date, has_year, has_sex, has_implied = (valid(a) for a in (stated_ddmmyy, birth_year, sex, implied_dmy))
    unchecked = ~valid(nik) | (~has_date & ~has_year & ~has_sex)
    sex_bad = has_sex & valid(implied_sex) & differs(sex, implied_sex)
    date_bad = has_date & (~has_implied | differs(implied_dmy, stated_ddmmyy))
    implied_yy = pc.utf8_slice_codeunits(implied_dmy, 4, 1 << 30)  # implied_dmy[4:]
    year_bad = ~has_date & has_year & (~has_implied | differs(implied_yy, stated_yy))
    verdict = np.where(sex_bad | date_bad | year_bad, "N", "Y").astype(object)
    verdict[unchecked] = None
    return pa.array(verdict, type=pa.string())
