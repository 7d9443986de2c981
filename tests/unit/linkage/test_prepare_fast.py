"""The column-wise preparation paths give exactly the values of the row-by-row reference functions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linkage.comparisons import PREPARED_COLUMNS
from linkage.normalise.prepare import FAST_MIN_ROWS, prepare_columns, prepare_table, prepare_table_rows
from linkage.records import (
    LINKAGE_COLUMNS,
    bpjs_records,
    dtks_records,
    population_records,
    population_records_rows,
)
from services.world import member_records, read_submissions, village_crosswalk


def assert_same_table(fast: pa.Table, reference: pa.Table) -> None:
    """Same schema, and the same value (None included) in every row of every column."""
    assert fast.schema.equals(reference.schema)
    assert fast.num_rows == reference.num_rows
    for name in reference.column_names:
        got, want = fast.column(name).to_pylist(), reference.column(name).to_pylist()
        diff = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w or type(g) is not type(w)]
        assert not diff, f"{name}: row {diff[0]} is {got[diff[0]]!r}, the reference gives {want[diff[0]]!r}"
    assert fast.equals(reference)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthetic.world import generate_world

    folder = tmp_path_factory.mktemp("world-fast")
    generate_world(folder, persons=20_000, seed=17)
    return folder


@pytest.fixture(scope="module")
def master(world: Path) -> pa.Table:
    return pq.read_table(world / "population.parquet")


def test_population_records_column_wise_equals_row_by_row(master: pa.Table) -> None:
    assert master.num_rows == 20_000
    assert_same_table(population_records(master), population_records_rows(master))


def test_prepared_master_equals_row_by_row_for_every_column(master: pa.Table) -> None:
    records = population_records_rows(master)
    fast = prepare_columns(records)
    reference = prepare_table_rows(records)
    assert fast.column_names == list(PREPARED_COLUMNS)
    assert_same_table(fast, reference)
    assert reference.column("nik_consistent").to_pylist().count("Y") == 20_000
    assert 0 < reference.column("birth_date_swapped").null_count < 20_000
    assert_same_table(prepare_table(records), reference)


def test_prepared_query_sources_equal_row_by_row(world: Path) -> None:
    crosswalk = village_crosswalk(world / "crosswalk.parquet")
    members = member_records(read_submissions(world / "submissions.jsonl").submissions, crosswalk)
    sources = {
        "members": members.select(list(LINKAGE_COLUMNS)),
        "dtks": dtks_records(pq.read_table(world / "dtks.parquet")),
        "bpjs": bpjs_records(pq.read_table(world / "bpjs.parquet")),
    }
    for name, records in sources.items():
        assert records.num_rows > FAST_MIN_ROWS, name
        reference = prepare_table_rows(records)
        assert_same_table(prepare_columns(records), reference)
        # The noisy sources have NIK/date disagreements and missing NIKs: all three verdicts compared.
        assert set(reference.column("nik_consistent").to_pylist()) == {"Y", "N", None}, name
    # Extra columns are carried along after the prepared ones, in both paths.
    keep = ("family_key", "relationship")
    assert_same_table(prepare_table(members, keep=keep), prepare_table_rows(members, keep=keep))


MESSY_NIKS = [
    "3603041505800002",
    " 3603045505800001 ",
    "3603.0415.0580.0003",
    "1000000000000000",
    "9999999999999999",
    "0000001505800002",
    "3603040000000002",
    "3603041505800000",
    "36030415058000",
    "",
    "   ",
    None,
    "٣603041505800002",  # an Arabic-Indic digit: Python's \\d keeps it
    "3603047113000004",
    "3603043102990001",
]
MESSY_NAMES = ["H. Ahmad Fauzi, S.Pd.", "  siti  ", "", None, "MOH.RIZKI", "Wa Nasia", "Djoko Tjahjono", "Ma'ruf"]
MESSY_DATES = ["1980-05-15", "1980-07-01", "1980-12-31", "1999-02-31", "15/05/1980", "", " ", None, "2013-11-03"]
MESSY_YEARS = ["1980", "1980.0", "abc", "", None, "1700", "2013"]
MESSY_SEX = ["M", "f", " L ", "P", "1", "2", "X", "", None]
MESSY_VILLAGES = ["36.03.04.2007", "3603042007", "360304200", "", None, "3603-04-2007 "]


def _messy_rows(count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(count):
        rows.append(
            {
                "record_id": [f"R{i}", f" R{i} ", "", None][i % 4],
                "nik": MESSY_NIKS[i % len(MESSY_NIKS)],
                "kk_number": MESSY_NIKS[(i * 7) % len(MESSY_NIKS)],
                "full_name": MESSY_NAMES[i % len(MESSY_NAMES)],
                "sex": MESSY_SEX[(i * 5) % len(MESSY_SEX)],
                "birth_date": MESSY_DATES[(i * 3) % len(MESSY_DATES)],
                "birth_year": MESSY_YEARS[(i * 11) % len(MESSY_YEARS)],
                "village_code": MESSY_VILLAGES[i % len(MESSY_VILLAGES)],
            }
        )
    return rows


def test_messy_values_equal_row_by_row() -> None:
    table = pa.Table.from_pylist(_messy_rows(2_000))
    assert_same_table(prepare_columns(table), prepare_table_rows(table))


def test_typed_and_missing_columns_equal_row_by_row() -> None:
    count = 500
    table = pa.table(
        {
            "record_id": pa.array(list(range(count)), pa.int64()),
            "nik": pa.array([MESSY_NIKS[i % len(MESSY_NIKS)] for i in range(count)], pa.large_string()),
            "full_name": pa.array([MESSY_NAMES[i % len(MESSY_NAMES)] for i in range(count)]),
            "birth_date": pa.array([date(1950 + i % 60, 1 + i % 12, 1 + i % 28) for i in range(count)]),
            "birth_year": pa.array([None if i % 3 else 1970 + i % 40 for i in range(count)], pa.int64()),
            "sex": pa.nulls(count),
        }
    )
    assert_same_table(prepare_columns(table), prepare_table_rows(table))


def test_unsupported_column_type_falls_back_to_the_reference() -> None:
    count = 300
    table = pa.table(
        {
            "record_id": [f"R{i}" for i in range(count)],
            "birth_year": pa.array([1980.0 + i % 3 for i in range(count)], pa.float64()),
        }
    )
    prepared = prepare_table(table)
    assert prepared.column("birth_year").to_pylist()[:3] == [1980, 1981, 1982]
    assert_same_table(prepared, prepare_table_rows(table))


def test_population_records_with_string_dates_and_missing_columns() -> None:
    population = pa.table(
        {
            "nik": ["3603041505800002", "3603045505800001", "3603041505800003"],
            "full_name": ["Ahmad", None, "Siti"],
            "birth_date": ["1980-05-15T00:00:00", "", None],
        }
    )
    fast = population_records(population)
    assert fast.column("birth_date").to_pylist() == ["1980-05-15", None, None]
    assert fast.column("birth_year").to_pylist() == [1980, None, None]
    assert fast.column("kk_number").null_count == 3
    assert_same_table(fast, population_records_rows(population))
    with pytest.raises(KeyError):
        population_records(pa.table({"full_name": ["Ahmad"]}))
