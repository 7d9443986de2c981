"""A Splink linker over a prepared master and prepared records, with master-only term frequencies.

Term frequencies come from the MASTER's prepared columns (not master + records, Splink's default), so
the batch linker, the trained model and the real-time engine all use the same table.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import duckdb
import pyarrow as pa

from linkage.comparisons import Source
from linkage.normalise.family import Candidate
from linkage.spec import ModelSpec

_counter = itertools.count()


def tf_columns(settings: dict[str, Any]) -> list[str]:
    """Columns with term-frequency adjustment in a Splink settings dict."""
    cols: list[str] = []
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            col = level.get("tf_adjustment_column")
            if col and col not in cols:
                cols.append(col)
    return cols


def master_tf_table(master: pa.Table, column: str) -> pa.Table:
    """`column`, `tf_<column>`: each non-null value's share of the master's non-null values."""
    con = duckdb.connect()
    con.register("m", master.select([column]))
    return con.sql(
        f'SELECT "{column}", CAST(count(*) AS DOUBLE) / (SELECT count("{column}") FROM m) AS "tf_{column}" '
        f'FROM m WHERE "{column}" IS NOT NULL GROUP BY "{column}"'
    ).to_arrow_table()


def input_names() -> tuple[str, str]:
    """Fresh table names (master, records) for `build_linker`; also Splink's `source_dataset` values."""
    n = next(_counter)
    return f"master_{n}", f"records_{n}"


def build_linker(
    master: pa.Table,
    records: pa.Table,
    settings: Any,
    *,
    db_api: Any | None = None,
    names: tuple[str, str] | None = None,
) -> Any:
    """A Splink `Linker` linking `records` to `master` (DuckDB unless `db_api` is given).

    `names` (from `input_names`) are the input tables' names, i.e. the pairs' `source_dataset` values."""
    from splink import DuckDBAPI, Linker

    if db_api is None:
        db_api = DuckDBAPI(duckdb.connect())
    master_name, records_name = names or input_names()
    n = master_name.removeprefix("master_")
    sdf_master = db_api.register(master, table_name=master_name)
    sdf_records = db_api.register(records, table_name=records_name)
    # ERROR: Splink logs its training chatter at INFO; the CLI shows a progress bar instead.
    linker = Linker([sdf_master, sdf_records], settings, log_level=logging.ERROR)
    settings_dict = linker.misc.save_model_to_json()
    for col in tf_columns(settings_dict):
        tf = db_api.register(master_tf_table(master, col), table_name=f"tf_{col}_{n}")
        linker.table_management.register_term_frequency_lookup(tf, col)
    return linker


def model_for_backend(model: dict[str, Any], source: Source | ModelSpec, db_api: Any) -> dict[str, Any]:
    """The trained model with its SQL rendered for `db_api`'s dialect (e.g. Spark).

    The saved JSON holds DuckDB SQL (double-quoted identifiers, DuckDB function names). For another
    backend the spec is rendered again in that dialect and the trained parameters are copied over
    level by level. `source` is the model's spec (or a source, for the full spec of older models).
    """
    from splink import Linker

    from linkage.comparisons import TokenSubsetLevel
    from linkage.normalise.prepare import PREPARED_SCHEMA
    from linkage.spec import full_spec

    if db_api.sql_dialect.sql_dialect_str == "duckdb":
        return model
    n = next(_counter)
    empty = pa.Table.from_pylist([], schema=PREPARED_SCHEMA)
    tables = [db_api.register(empty, table_name=f"empty_a_{n}"), db_api.register(empty, table_name=f"empty_b_{n}")]
    spec = full_spec(source) if isinstance(source, str) else source
    rendered: dict[str, Any] = Linker(tables, spec.render_settings(), log_level=logging.ERROR).misc.save_model_to_json()
    rendered["probability_two_random_records_match"] = model["probability_two_random_records_match"]
    if db_api.sql_dialect.sql_dialect_str == "spark":  # DuckDB list functions -> Spark array functions
        spark = {
            lv.sql(): lv.spark_sql() for c in spec.comparisons for lv in c.levels if isinstance(lv, TokenSubsetLevel)
        }
        for comparison in rendered["comparisons"]:
            for level in comparison["comparison_levels"]:
                level["sql_condition"] = spark.get(level["sql_condition"], level["sql_condition"])
    for target, trained in zip(rendered["comparisons"], model["comparisons"], strict=True):
        for t_level, m_level in zip(target["comparison_levels"], trained["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability"):
                if key in m_level:
                    t_level[key] = m_level[key]
    return rendered


def candidates_of(predictions: dict[str, list[Any]]) -> list[Candidate]:
    """Scored pairs from `linker.inference.predict().as_dict()`, as (record id, master id, weight, probability)."""
    out: list[Candidate] = []
    for src_l, id_l, id_r, weight, prob in zip(
        predictions["source_dataset_l"],
        predictions["record_id_l"],
        predictions["record_id_r"],
        predictions["match_weight"],
        predictions["match_probability"],
        strict=True,
    ):
        # Splink orders each pair by source dataset name; the master's table name starts "master".
        rec, mas = (id_r, id_l) if str(src_l).startswith("master") else (id_l, id_r)
        out.append(Candidate(str(rec), str(mas), float(weight), float(prob)))
    return out
