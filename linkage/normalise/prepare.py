"""Raw linkage records -> prepared columns (the columns `linkage.comparisons` compares).

Input is the linkage record of docs/data-model.md: `record_id`, `nik`, `kk_number`, `full_name`, `sex`,
`birth_date`, `birth_year`, `village_code`, `address` (any may be missing or empty). The same function
prepares master rows and query rows, so both sides of a pair are treated identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

import pyarrow as pa

from linkage.comparisons import INTEGER_COLUMNS, PREPARED_COLUMNS
from linkage.normalise.dates import is_placeholder, parse_date, parse_year, swapped
from linkage.normalise.names import normalise_name
from linkage.normalise.nik import clean_nik, nik_consistency
from linkage.normalise.regions import clean_village_code

_SEX = {"M": "M", "L": "M", "1": "M", "F": "F", "P": "F", "2": "F"}


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def clean_sex(value: object) -> str | None:
    """`M`/`F` from M/F, L/P (laki-laki/perempuan) or 1/2; None otherwise."""
    text = _text(value)
    return _SEX.get(text.upper()) if text else None


@lru_cache(maxsize=131_072)
def _date_facts(value: object) -> tuple[date | None, str | None, str | None, str | None]:
    # Birth dates repeat a lot across a master: (date, iso, iso unless placeholder, swapped iso).
    dob = parse_date(value)
    if dob is None:
        return None, None, None, None
    iso = dob.isoformat()
    swap = swapped(dob)
    return dob, iso, None if is_placeholder(dob) else iso, swap.isoformat() if swap is not None else None


def prepare_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The prepared columns of one linkage record (a dict with exactly `PREPARED_COLUMNS`)."""
    nik = clean_nik(_text(record.get("nik")))
    kk = clean_nik(_text(record.get("kk_number")))
    name = normalise_name(_text(record.get("full_name")))
    sex = clean_sex(record.get("sex"))
    dob, iso, real, swap = _date_facts(record.get("birth_date"))
    year = dob.year if dob is not None else parse_year(record.get("birth_year"))
    village = clean_village_code(record.get("village_code"))
    return {
        "record_id": _text(record.get("record_id")),
        "nik": nik,
        "nik_consistent": nik_consistency(nik, dob, year if dob is None else None, sex),
        "kk_number": kk,
        "name_norm": name.name_norm,
        "name_concat": name.name_concat,
        "name_key": name.name_key,
        "given_name": name.given_name,
        "given_name_key": name.given_name_key,
        "other_names": name.other_names,
        "sex": sex,
        "birth_date": iso,
        "birth_date_real": real,
        "birth_date_swapped": swap,
        "birth_year": year,
        "village_code": village,
        "district_code": village[:6] if village else None,
    }


PREPARED_SCHEMA = pa.schema(
    [(c, pa.int64() if c in INTEGER_COLUMNS else pa.string()) for c in PREPARED_COLUMNS]
)


def prepare_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Prepare many records (list form)."""
    return [prepare_record(r) for r in rows]


def prepare_table(table: pa.Table, *, keep: Sequence[str] = ()) -> pa.Table:
    """Prepare a pyarrow table of linkage records; `keep` names extra input columns to carry along."""
    rows = table.to_pylist()
    prepared = prepare_rows(rows)
    out = pa.Table.from_pylist(prepared, schema=PREPARED_SCHEMA)
    for col in keep:
        out = out.append_column(col, table.column(col))
    return out
