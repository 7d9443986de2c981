"""The comparison spec renders to valid Splink settings and keeps its documented shape."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker

from linkage.comparisons import (
    BLOCKING_RULES,
    COMPARISONS,
    PREPARED_COLUMNS,
    SOURCES,
    ElseLevel,
    NullLevel,
    render_settings,
)


@pytest.mark.parametrize("source", SOURCES)
def test_every_comparison_starts_with_null_and_ends_with_else(source: str) -> None:
    for comparison in COMPARISONS[source]:  # type: ignore[index]
        assert isinstance(comparison.levels[0], NullLevel)
        assert isinstance(comparison.levels[-1], ElseLevel)
        assert set(comparison.columns()) <= set(PREPARED_COLUMNS)
    for rule in BLOCKING_RULES[source]:  # type: ignore[index]
        assert set(rule) <= set(PREPARED_COLUMNS)


def _prepared(ids: list[str], nik_suffix: list[str]) -> pa.Table:
    rows = []
    for rid, suf in zip(ids, nik_suffix, strict=True):
        row: dict[str, object] = {c: None for c in PREPARED_COLUMNS}
        row.update(
            record_id=rid,
            nik="360312150580" + suf,
            name_norm="SITI AMINAH",
            name_concat="SITIAMINAH",
            name_key="STMN",
            given_name="SITI",
            given_name_key="ST",
            other_names="AMINAH",
            sex="F",
            birth_date="1980-05-15",
            birth_date_real="1980-05-15",
            birth_year=1980,
            village_code="3603122001",
            district_code="360312",
            nik_consistent="Y",
        )
        rows.append(row)
    schema = pa.schema([(c, pa.int64() if c == "birth_year" else pa.string()) for c in PREPARED_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def test_members_settings_render_and_score_in_splink() -> None:
    db = DuckDBAPI(duckdb.connect())
    master = db.register(_prepared(["a", "b"], ["0001", "0002"]), table_name="master")
    records = db.register(_prepared(["x"], ["0001"]), table_name="records")
    linker = Linker([master, records], render_settings("members"))
    model = linker.misc.save_model_to_json()
    names = [c["output_column_name"] for c in model["comparisons"]]
    assert names == ["nik", "name", "birth_date", "sex", "village", "address", "kk_number"]
    nik_levels = model["comparisons"][0]["comparison_levels"]
    assert nik_levels[0]["is_null_level"] is True
    assert nik_levels[3]["sql_condition"] == 'damerau_levenshtein("nik_l", "nik_r") <= 1'
    name_exact = model["comparisons"][1]["comparison_levels"][1]
    assert name_exact["tf_adjustment_column"] == "name_norm"
    pairs = linker.inference.predict().as_duckdbpyrelation().fetchall()
    # both master rows share name and date with the record, so both are candidates
    assert len(pairs) == 2
