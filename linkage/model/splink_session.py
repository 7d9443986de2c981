"""A Splink linker over a prepared master and prepared records, with master-only term frequencies.

Term frequencies come from the MASTER's prepared columns (not master + records, Splink's default), so
the batch linker, the trained model and the real-time engine all use the same table.
"""

from __future__ import annotations

import itertools
import json
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


def dialect_of(db_api: Any | None) -> str:
    """The SQL dialect of a Splink database API (`duckdb` when None: `build_linker`'s default)."""
    return "duckdb" if db_api is None else str(db_api.sql_dialect.sql_dialect_str)


def rendered_settings(source: Source | ModelSpec, db_api: Any) -> dict[str, Any]:
    """The spec's Splink settings (no trained parameters) as JSON in `db_api`'s dialect.

    `source` is a spec, or a source for its full spec (older models)."""
    from splink import Linker

    from linkage.comparisons import TokenSubsetLevel
    from linkage.normalise.prepare import PREPARED_SCHEMA
    from linkage.spec import full_spec

    n = next(_counter)
    empty = pa.Table.from_pylist([], schema=PREPARED_SCHEMA)
    tables = [db_api.register(empty, table_name=f"empty_a_{n}"), db_api.register(empty, table_name=f"empty_b_{n}")]
    spec = full_spec(source) if isinstance(source, str) else source
    rendered: dict[str, Any] = Linker(tables, spec.render_settings(), log_level=logging.ERROR).misc.save_model_to_json()
    if dialect_of(db_api) == "spark":  # DuckDB list functions -> Spark array functions
        spark = {
            lv.sql(): lv.spark_sql() for c in spec.comparisons for lv in c.levels if isinstance(lv, TokenSubsetLevel)
        }
        for comparison in rendered["comparisons"]:
            for level in comparison["comparison_levels"]:
                level["sql_condition"] = spark.get(level["sql_condition"], level["sql_condition"])
    return rendered


def with_parameters(target: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """`target` settings (a new dict) with `trained`'s prior and m/u copied level by level.

    Both must come from the same spec (any dialects): levels are matched by position."""
    out: dict[str, Any] = json.loads(json.dumps(target))
    out["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    for comparison, learnt in zip(out["comparisons"], trained["comparisons"], strict=True):
        for level, source_level in zip(comparison["comparison_levels"], learnt["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability"):
                if key in source_level:
                    level[key] = source_level[key]
    return out


def model_for_backend(model: dict[str, Any], source: Source | ModelSpec, db_api: Any | None) -> dict[str, Any]:
    """The trained model with its SQL rendered for `db_api`'s dialect (e.g. Spark; unchanged for DuckDB).

    The saved JSON holds DuckDB SQL (double-quoted identifiers, DuckDB function names). For another
    backend the spec is rendered again in that dialect and the trained parameters are copied over
    level by level. `source` is the model's spec (or a source, for the full spec of older models).
    """
    if dialect_of(db_api) == "duckdb":
        return model
    return with_parameters(rendered_settings(source, db_api), model)


def model_to_duckdb(model: dict[str, Any], source: Source | ModelSpec) -> dict[str, Any]:
    """A model trained on another backend with its SQL rendered back in DuckDB's dialect (the artefact's:
    the real-time engine and `model_for_backend` read it)."""
    from splink import DuckDBAPI

    if model.get("sql_dialect") == "duckdb":
        return model
    return with_parameters(rendered_settings(source, DuckDBAPI(duckdb.connect())), model)


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
