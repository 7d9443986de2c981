"""The plain-Splink baseline: library comparisons on the raw fields, no Indonesian normalisation.

It answers "what does our normalisation buy?": same data, same training recipe (prior, u by random
sampling, EM), but Splink's default comparisons on `nik`, `full_name`, `birth_date`, `sex` and
`village_code` as they come (only empty strings become NULL, which Splink needs).
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from linkage.model.splink_session import candidates_of
from linkage.model.training import DEFAULT_MAX_PAIRS, DEFAULT_SEED
from linkage.normalise.family import Candidate

RAW_COLUMNS = ("record_id", "nik", "full_name", "sex", "birth_date", "village_code")


def raw_table(records: pa.Table) -> pa.Table:
    """The raw linkage columns as strings, with empty strings as NULL."""
    cols = []
    for name in RAW_COLUMNS:
        col = records.column(name).cast(pa.string())
        cols.append(pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col))
    return pa.table(dict(zip(RAW_COLUMNS, cols, strict=True)))


def baseline_settings() -> Any:
    """Splink settings built from the comparison library's defaults."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="record_id",
        comparisons=[
            cl.ExactMatch("nik"),
            cl.NameComparison("full_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("village_code"),
        ],
        blocking_rules_to_generate_predictions=[block_on("nik"), block_on("full_name"), block_on("birth_date", "sex")],
    )


def link_baseline(
    master: pa.Table, records: pa.Table, *, max_pairs: float = DEFAULT_MAX_PAIRS, seed: int = DEFAULT_SEED
) -> list[Candidate]:
    """Train the baseline unsupervised on these files and return all scored candidate pairs."""
    from splink import DuckDBAPI, Linker, block_on

    db_api = DuckDBAPI(duckdb.connect())
    linker = Linker(
        [
            db_api.register(raw_table(master), table_name="master"),
            db_api.register(raw_table(records), table_name="records"),
        ],
        baseline_settings(),
        log_level=logging.ERROR,
    )
    linker.training.estimate_probability_two_random_records_match([block_on("nik", "birth_date")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("nik"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    return candidates_of(linker.inference.predict().as_dict())
