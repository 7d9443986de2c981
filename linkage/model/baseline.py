"""The plain-Splink baseline: library comparisons on the raw fields, no Indonesian normalisation.

It answers "what does our normalisation buy?": same data, same training recipe (prior, u by random
sampling, EM), but Splink's default comparisons on `nik`, `full_name`, `birth_date`, `sex`,
`village_code` and `address` as they come (only empty strings become NULL, which Splink needs), each
only when both files fill it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from linkage.model.splink_session import candidates_of
from linkage.model.training import DEFAULT_MAX_PAIRS, DEFAULT_SEED
from linkage.normalise.family import Candidate

RAW_COLUMNS = ("record_id", "nik", "full_name", "sex", "birth_date", "village_code", "address")
# A raw column takes part when at least this share of both files fills it (as `linkage.spec.FILL_FLOOR`).
RAW_FILL_FLOOR = 0.2


def raw_table(records: pa.Table, columns: tuple[str, ...] = RAW_COLUMNS) -> pa.Table:
    """The raw linkage columns as strings, with empty strings as NULL (absent columns all NULL)."""
    cols = []
    for name in columns:
        if name not in records.column_names:
            cols.append(pa.nulls(records.num_rows, pa.string()))
            continue
        col = records.column(name).cast(pa.string())
        cols.append(pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col))
    return pa.table(dict(zip(columns, cols, strict=True)))


def filled_columns(master: pa.Table, records: pa.Table) -> tuple[str, ...]:
    """Raw columns filled in both files above `RAW_FILL_FLOOR` (record_id always)."""

    def fill(table: pa.Table, column: str) -> float:
        return 1 - table.column(column).null_count / table.num_rows if table.num_rows else 0.0

    return tuple(c for c in RAW_COLUMNS if c == "record_id" or min(fill(master, c), fill(records, c)) >= RAW_FILL_FLOOR)


def baseline_settings(columns: tuple[str, ...] = RAW_COLUMNS) -> Any:
    """Splink settings built from the comparison library's defaults, for the columns given."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    library: dict[str, Callable[[], Any]] = {
        "nik": lambda: cl.ExactMatch("nik"),
        "full_name": lambda: cl.NameComparison("full_name"),
        "birth_date": lambda: cl.DateOfBirthComparison("birth_date", input_is_string=True),
        "sex": lambda: cl.ExactMatch("sex"),
        "village_code": lambda: cl.ExactMatch("village_code"),
        "address": lambda: cl.JaroWinklerAtThresholds("address"),
    }
    blocking = [("nik",), ("full_name",), ("birth_date", "sex") if "sex" in columns else ("birth_date",)]
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="record_id",
        comparisons=[library[c]() for c in columns if c in library],
        blocking_rules_to_generate_predictions=[block_on(*r) for r in blocking if set(r) <= set(columns)],
    )


def link_baseline(
    master: pa.Table, records: pa.Table, *, max_pairs: float = DEFAULT_MAX_PAIRS, seed: int = DEFAULT_SEED
) -> list[Candidate]:
    """Train the baseline unsupervised on these files and return all scored candidate pairs.

    Only raw columns filled in both files take part; without NIK the prior comes from name + birth
    date and EM runs blocked on birth date, then on name."""
    from splink import DuckDBAPI, Linker, block_on

    columns = filled_columns(raw_table(master), raw_table(records))
    db_api = DuckDBAPI(duckdb.connect())
    linker = Linker(
        [
            db_api.register(raw_table(master, columns), table_name="master"),
            db_api.register(raw_table(records, columns), table_name="records"),
        ],
        baseline_settings(columns),
        log_level=logging.ERROR,
    )
    has_nik = "nik" in columns
    prior_rule = block_on("nik", "birth_date") if has_nik else block_on("full_name", "birth_date")
    linker.training.estimate_probability_two_random_records_match([prior_rule], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("nik" if has_nik else "full_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    return candidates_of(linker.inference.predict().as_dict())
