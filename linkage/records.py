"""Source rows -> the common linkage record (docs/data-model.md, "The linkage record").

Each register speaks its own dialect (Dukcapil, the REGSOSEK questionnaire, DTKS, BPJS); this module
translates each into the same nine columns, so normalisation, models and the engine see one shape.
Survey members (mapped from the contracts by `integration.mapping`, then `member_table`) also carry
their family context (family key, head's name, KK number, relationship) for the family tie-break in
`linkage.normalise.family`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from linkage.normalise.address import household_address
from linkage.normalise.columnar import as_array, distinct_safe, map_distinct

LINKAGE_COLUMNS: tuple[str, ...] = (
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

LINKAGE_SCHEMA = pa.schema([(c, pa.int64() if c == "birth_year" else pa.string()) for c in LINKAGE_COLUMNS])
MEMBER_SCHEMA = pa.schema(
    [
        *LINKAGE_SCHEMA,
        ("family_key", pa.string()),
        ("head_name", pa.string()),
        ("relationship", pa.int64()),
        ("submission_id", pa.string()),
    ]
)


def _iso(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    return str(value)[:10]


def _year(iso: str | None) -> int | None:
    return int(iso[:4]) if iso else None


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def population_records_rows(population: pa.Table) -> pa.Table:
    """`population_records` row by row: the reference the column-wise path is tested against."""
    rows = []
    for r in population.to_pylist():
        dob = _iso(r.get("birth_date"))
        rows.append(
            {
                "record_id": r["nik"],
                "nik": r["nik"],
                "kk_number": r.get("kk_number"),
                "full_name": r.get("full_name"),
                "sex": r.get("sex"),
                "birth_date": dob,
                "birth_year": _year(dob),
                "village_code": r.get("village_code"),
                "address": household_address(r.get("address"), r.get("rt"), r.get("rw")),
            }
        )
    return _table(rows, LINKAGE_SCHEMA)


_PASSTHROUGH = ("nik", "kk_number", "full_name", "sex", "village_code", "address")


def _iso_and_year(value: object) -> tuple[str | None, int | None]:
    iso = _iso(value)
    return iso, _year(iso)


def population_records(population: pa.Table) -> pa.Table:
    """Dukcapil master rows (population.parquet) -> linkage records; the record id is the NIK.

    Column-wise (text columns are taken as they are, birth dates converted once per distinct date);
    the same values as `population_records_rows`, which handles layouts this path does not.
    """
    names = population.column_names
    text_ok = all(
        pa.types.is_string(population.column(c).type) or pa.types.is_null(population.column(c).type)
        for c in _PASSTHROUGH
        if c in names
    )
    if "nik" not in names or not text_ok or ("birth_date" in names and not distinct_safe(population["birth_date"])):
        return population_records_rows(population)

    def text(name: str) -> pa.Array:
        if name not in names:
            return pa.nulls(population.num_rows, pa.string())
        return as_array(population.column(name))

    birth = population.column("birth_date") if "birth_date" in names else text("birth_date")
    iso, year = map_distinct(birth, _iso_and_year, [pa.string(), pa.int64()])
    columns = {c: text(c) for c in _PASSTHROUGH}
    columns.update(record_id=columns["nik"], birth_date=iso, birth_year=year)
    if "rt" in names or "rw" in names:  # the population file keeps RT/RW apart from the street line
        # one string per row (unit separator between the parts), so each distinct address is composed once
        joined = pc.binary_join_element_wise(
            columns["address"], text("rt"), text("rw"), "\x1f", null_handling="replace", null_replacement=""
        )
        (columns["address"],) = map_distinct(joined, lambda v: (household_address(*v.split("\x1f")),), [pa.string()])
    return pa.Table.from_arrays([columns[c] for c in LINKAGE_COLUMNS], schema=LINKAGE_SCHEMA)


def dtks_records(dtks: pa.Table) -> pa.Table:
    """DTKS rows (dtks.parquet) -> linkage records (`L`/`P` sex; `id_keluarga` is not a KK number)."""
    rows = []
    for r in dtks.to_pylist():
        dob = _iso(r.get("tanggal_lahir"))
        rows.append(
            {
                "record_id": r["id_dtks"],
                "nik": r.get("nik"),
                "kk_number": None,
                "full_name": r.get("nama"),
                "sex": {"L": "M", "P": "F"}.get(r.get("jenis_kelamin") or ""),
                "birth_date": dob,
                "birth_year": _year(dob),
                "village_code": r.get("kode_desa"),
                "address": r.get("alamat"),
            }
        )
    return _table(rows, LINKAGE_SCHEMA)


def bpjs_records(bpjs: pa.Table) -> pa.Table:
    """BPJS PBI-JK rows (bpjs.parquet) -> linkage records (`jk` 1 male / 2 female)."""
    rows = []
    for r in bpjs.to_pylist():
        dob = _iso(r.get("tgl_lahir"))
        rows.append(
            {
                "record_id": r["noka"],
                "nik": r.get("nik"),
                "kk_number": None,
                "full_name": r.get("nama_peserta"),
                "sex": {"1": "M", "2": "F"}.get(str(r.get("jk") or "")),
                "birth_date": dob,
                "birth_year": _year(dob),
                "village_code": r.get("kd_desa"),
                "address": None,
            }
        )
    return _table(rows, LINKAGE_SCHEMA)


def member_table(columns: Mapping[str, Sequence[Any]]) -> pa.Table:
    """Survey members' linkage records with family context (`MEMBER_SCHEMA`) from column lists.

    The columns come from `integration.mapping.record_columns`: the one mapping of a questionnaire
    member, shared by the batch commands and the streaming linker (the core never reads contracts).
    """
    return pa.Table.from_pydict({c: columns[c] for c in MEMBER_SCHEMA.names}, schema=MEMBER_SCHEMA)


def family_key_string(key: Mapping[str, Any]) -> str:
    """The 22-digit REGSOSEK22-K family key of a submission's `family_key` object."""
    parts = (
        "province",
        "regency",
        "district",
        "village",
        "sls",
        "sub_sls",
        "building_serial",
        "family_serial",
    )
    return "".join(str(key[p]) for p in parts)
