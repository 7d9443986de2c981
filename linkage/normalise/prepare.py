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
import pyarrow.compute as pc

from linkage.comparisons import INTEGER_COLUMNS, PREPARED_COLUMNS
from linkage.normalise.address import normalise_address
from linkage.normalise.columnar import (
    as_array,
    distinct_safe,
    map_distinct,
    with_fallback,
)
from linkage.normalise.dates import is_placeholder, parse_date, parse_year, swapped
from linkage.normalise.names import normalise_name
from linkage.normalise.nik import clean_nik, nik_consistency, nik_consistency_column
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
def _date_facts(value: object) -> tuple[date | None, str | None, str | None, str | None, str | None]:
    # Birth dates repeat a lot across a master: (date, iso, iso unless placeholder, swapped iso,
    # MM-DD unless placeholder).
    dob = parse_date(value)
    if dob is None:
        return None, None, None, None, None
    iso = dob.isoformat()
    swap = swapped(dob)
    real = None if is_placeholder(dob) else iso
    return dob, iso, real, swap.isoformat() if swap is not None else None, iso[5:] if real else None


def prepare_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The prepared columns of one linkage record (a dict with exactly `PREPARED_COLUMNS`)."""
    nik = clean_nik(_text(record.get("nik")))
    kk = clean_nik(_text(record.get("kk_number")))
    name = normalise_name(_text(record.get("full_name")))
    sex = clean_sex(record.get("sex"))
    dob, iso, real, swap, day_month = _date_facts(record.get("birth_date"))
    year = dob.year if dob is not None else parse_year(record.get("birth_year"))
    village = clean_village_code(record.get("village_code"))
    address = normalise_address(_text(record.get("address")))
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
        "name_sorted": name.name_sorted,
        "name_initials": name.name_initials,
        "sex": sex,
        "birth_date": iso,
        "birth_date_real": real,
        "birth_date_swapped": swap,
        "birth_day_month": day_month,
        "birth_year": year,
        "village_code": village,
        "district_code": village[:6] if village else None,
        "addr_place": address.addr_place,
        "addr_rt": address.addr_rt,
        "addr_rw": address.addr_rw,
        "household_key": address.household_key,
    }


PREPARED_SCHEMA = pa.schema([(c, pa.int64() if c in INTEGER_COLUMNS else pa.string()) for c in PREPARED_COLUMNS])


def prepare_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Prepare many records (list form)."""
    return [prepare_record(r) for r in rows]


def prepare_table_rows(table: pa.Table, *, keep: Sequence[str] = ()) -> pa.Table:
    """Prepare a table row by row through `prepare_record`: the reference the fast path is tested against."""
    out = pa.Table.from_pylist(prepare_rows(table.to_pylist()), schema=PREPARED_SCHEMA)
    for col in keep:
        out = out.append_column(col, table.column(col))
    return out


def prepare_table(table: pa.Table, *, keep: Sequence[str] = ()) -> pa.Table:
    """Prepare a pyarrow table of linkage records; `keep` names extra input columns to carry along.

    Large tables go through the column-wise path (`linkage.normalise.columnar`), which gives the same
    values as `prepare_table_rows`; small batches (real-time queries) and unusual column types go row by
    row, where the per-call overhead of Arrow kernels would cost more than it saves.
    """
    if table.num_rows < FAST_MIN_ROWS or not _fast_supported(table):
        return prepare_table_rows(table, keep=keep)
    out = prepare_columns(table)
    for col in keep:
        out = out.append_column(col, table.column(col))
    return out


# Below this many rows the row-by-row path is as fast or faster: the column-wise path has a fixed cost
# of about 0.6 ms (a few dozen Arrow kernel calls); measured crossover 200-250 rows of member records.
FAST_MIN_ROWS = 256
_INPUT_COLUMNS = (
    "record_id",
    "nik",
    "kk_number",
    "full_name",
    "sex",
    "birth_date",
    "birth_year",
    "village_code",
    "address",
)
# A NIK / KK number that needs no cleaning: 16 ASCII digits (anything else goes through `clean_nik`).
_PLAIN_NIK = r"^[0-9]{16}$"
# An id `_text` leaves unchanged: starts and ends with a printable, non-space ASCII character.
_PLAIN_TEXT = r"(?s)^[!-~](.*[!-~])?$"
_NAME_COLUMNS = (
    "name_norm",
    "name_concat",
    "name_key",
    "given_name",
    "given_name_key",
    "other_names",
    "name_sorted",
    "name_initials",
)
_ADDRESS_COLUMNS = ("addr_place", "addr_rt", "addr_rw", "household_key")
_REPEATED_DIGITS = pa.array([str(d) * 15 for d in range(10)])


def _fast_supported(table: pa.Table) -> bool:
    return all(distinct_safe(table.column(c)) for c in _INPUT_COLUMNS if c in table.column_names)


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return as_array(table.column(name))


def _clean_niks(column: pa.Array) -> pa.Array:
    """`clean_nik(_text(v))` for every row: plain 16-digit strings checked for sentinels column-wise."""

    def reference(value: object) -> str | None:
        return clean_nik(_text(value))

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return map_distinct(column, lambda v: (reference(v),), [pa.string()])[0]
    text = column.cast(pa.string())
    sentinel = pc.or_(
        pc.or_(
            pc.is_in(pc.utf8_slice_codeunits(text, 1, 16), value_set=_REPEATED_DIGITS),
            pc.equal(pc.utf8_slice_codeunits(text, 0, 6), "000000"),
        ),
        pc.or_(
            pc.equal(pc.utf8_slice_codeunits(text, 6, 12), "000000"),
            pc.equal(pc.utf8_slice_codeunits(text, 12, 16), "0000"),
        ),
    )
    fast = pc.if_else(sentinel, pa.scalar(None, pa.string()), text)
    return with_fallback(text, pc.match_substring_regex(text, _PLAIN_NIK), fast, reference, pa.string())


def _record_ids(column: pa.Array) -> pa.Array:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return map_distinct(column, lambda v: (_text(v),), [pa.string()])[0]
    text = column.cast(pa.string())
    return with_fallback(text, pc.match_substring_regex(text, _PLAIN_TEXT), text, _text, pa.string())


def _name_parts(value: object) -> tuple[str | None, ...]:
    n = normalise_name(_text(value))
    return (
        n.name_norm,
        n.name_concat,
        n.name_key,
        n.given_name,
        n.given_name_key,
        n.other_names,
        n.name_sorted,
        n.name_initials,
    )


def _address_parts(value: object) -> tuple[str | None, ...]:
    a = normalise_address(_text(value))
    return a.addr_place, a.addr_rt, a.addr_rw, a.household_key


def _date_parts(value: object) -> tuple[object, ...]:
    dob, iso, real, swap, day_month = _date_facts(value)
    if dob is None:
        return iso, real, swap, day_month, None, None
    return iso, real, swap, day_month, dob.year, dob.strftime("%d%m%y")  # the last: as `nik_consistency` reads it


def _village_parts(value: object) -> tuple[str | None, str | None]:
    village = clean_village_code(value)
    return village, village[:6] if village else None


def prepare_columns(table: pa.Table) -> pa.Table:
    """The prepared columns of a whole table, column-wise: the values of `prepare_table_rows`.

    Input columns must be string, integer, date32 or null typed (see `prepare_table`)."""
    nik = _clean_niks(_column(table, "nik"))
    names = map_distinct(_column(table, "full_name"), _name_parts, [pa.string()] * len(_NAME_COLUMNS))
    address = map_distinct(_column(table, "address"), _address_parts, [pa.string()] * len(_ADDRESS_COLUMNS))
    (sex,) = map_distinct(_column(table, "sex"), lambda v: (clean_sex(v),), [pa.string()])
    iso, real, swap, day_month, dob_year, ddmmyy = map_distinct(
        _column(table, "birth_date"), _date_parts, [pa.string()] * 4 + [pa.int64(), pa.string()]
    )
    (stated_year,) = map_distinct(_column(table, "birth_year"), lambda v: (parse_year(v),), [pa.int64()])
    year = pc.coalesce(dob_year, stated_year)  # the date's year when there is a date
    village, district = map_distinct(_column(table, "village_code"), _village_parts, [pa.string()] * 2)
    columns = {
        "record_id": _record_ids(_column(table, "record_id")),
        "nik": nik,
        "nik_consistent": nik_consistency_column(nik, ddmmyy, year, sex),
        "kk_number": _clean_niks(_column(table, "kk_number")),
        **dict(zip(_NAME_COLUMNS, names, strict=True)),
        "sex": sex,
        "birth_date": iso,
        "birth_date_real": real,
        "birth_date_swapped": swap,
        "birth_day_month": day_month,
        "birth_year": year,
        "village_code": village,
        "district_code": district,
        **dict(zip(_ADDRESS_COLUMNS, address, strict=True)),
    }
    return pa.Table.from_arrays([columns[c] for c in PREPARED_COLUMNS], schema=PREPARED_SCHEMA)
