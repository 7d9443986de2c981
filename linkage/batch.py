"""Batch linkage of a whole file of linkage records against a master file (Splink on DuckDB or Spark).

Used for backfills of a sectoral database or a survey dump: prepare both files, train a model when
none is given, predict all blocked pairs with Splink, then pick each record's best master record
(one-to-one inside a family submission when family context is present; close candidates ordered by
the head's name when the master has a `relationship` column) and band it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from linkage.comparisons import Source
from linkage.engine.relatives import without_relative_niks
from linkage.inputs import MissingColumnError, check_columns, check_input, unusable_values
from linkage.model.artefact import ModelArtefact, band_of, build_metadata, regularise, table_sha256
from linkage.model.splink_session import build_linker, candidates_of, model_for_backend
from linkage.model.training import DEFAULT_MAX_PAIRS, DEFAULT_SEED, train_model
from linkage.normalise.family import Candidate, HeadContext, choose_best, master_heads, member_heads
from linkage.normalise.prepare import prepare_table
from linkage.spec import ModelSpec, spec_for_tables

__all__ = ["MissingColumnError", "check_columns", "link_file", "predict_pairs", "train_artefact"]

OUTPUT_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("master_record_id", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
        ("band", pa.string()),
    ]
)
Progress = Callable[[str], None]


def train_artefact(
    prepared_master: pa.Table,
    prepared_records: pa.Table,
    source: Source,
    *,
    max_pairs: float = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    spec: ModelSpec | None = None,
) -> ModelArtefact:
    """Train, regularise and describe a model (not yet written to disk).

    Without `spec` it is chosen from the tables' fill rates (`linkage.spec.choose_spec`; raises
    `linkage.spec.NotEnoughToLink` when they cannot support a model)."""
    spec = spec or spec_for_tables(source, prepared_master, prepared_records)
    model = regularise(
        train_model(prepared_master, prepared_records, spec, max_pairs=max_pairs, seed=seed, progress=progress)
    )
    data_hash = table_sha256(prepared_master, prepared_records)
    meta = build_metadata(source, data_hash, training={"max_pairs": max_pairs, "seed": seed}, spec=spec)
    return ModelArtefact(model, meta)


def predict_pairs(
    prepared_master: pa.Table,
    prepared_records: pa.Table,
    model: dict[str, Any],
    *,
    source: Source | ModelSpec = "members",
    db_api: Any | None = None,
) -> list[Candidate]:
    """All blocked candidate pairs with Splink's weights, oriented record -> master.

    `source` (or the model's spec) is needed only to re-render the model for a non-DuckDB `db_api`."""
    trained = model  # DuckDB SQL: the relative's-NIK rule reads its levels from this one
    if db_api is not None:
        model = model_for_backend(model, source, db_api)
    # each comparison's weight (mw_*) is needed by the relative's-NIK rule
    model = {**model, "retain_intermediate_calculation_columns": True}
    linker = build_linker(prepared_master, prepared_records, model, db_api=db_api)
    predictions = linker.inference.predict().as_dict()
    return without_relative_niks(candidates_of(predictions), predictions, trained)


def _capped(band: str, candidate: Candidate | None) -> str:
    """A pair whose name and birth date disagree (e.g. with the holder of a relative's NIK) is never
    auto-linked (`linkage.engine.relatives`)."""
    return "review" if band == "auto_link" and candidate is not None and candidate.contradicted else band


def link_file(
    master: pa.Table,
    records: pa.Table,
    *,
    artefact: ModelArtefact | None = None,
    source: Source = "members",
    db_api: Any | None = None,
    progress: Progress | None = None,
    notes: Callable[[str], None] | None = None,
) -> tuple[pa.Table, ModelArtefact]:
    """Link `records` to `master` (both linkage-record tables); returns (links table, model used).

    Raises `linkage.inputs.LinkInputError` for unusable files and `linkage.spec.NotEnoughToLink` when a
    model must be trained and the files fill too few columns."""
    step = progress or (lambda _msg: None)
    check_input(master, "master file")
    check_input(records, "records file")
    step("normalise")
    group_col = "submission_id" if "submission_id" in records.column_names else None
    pm = prepare_table(master)
    pr = prepare_table(records)
    note = notes or (lambda _msg: None)
    for raw, prepared, what in ((master, pm, "master file"), (records, pr, "records file")):
        for unusable in unusable_values(raw, prepared):
            note(unusable.message(what))
    if artefact is None:
        spec = spec_for_tables(source, pm, pr)
        for line in spec.describe():
            note(f"model spec: {line}")
        artefact = train_artefact(pm, pr, source, progress=step, spec=spec)
    else:
        for line in artefact.spec.describe():
            note(f"model spec (from the artefact): {line}")
    step("predict")
    candidates = predict_pairs(pm, pr, artefact.model, source=artefact.spec, db_api=db_api)
    step("choose best")
    group_of = None
    if group_col is not None:
        ids = records.column("record_id").to_pylist()
        groups = records.column(group_col).to_pylist()
        group_of = {str(i): str(g) for i, g in zip(ids, groups, strict=True) if g is not None}
    heads = None
    if "relationship" in master.column_names and "head_name" in records.column_names:
        heads = HeadContext(member_heads(records), master_heads(master))
    choices = choose_best(candidates, group_of, heads)
    rows = []
    for rid in records.column("record_id").to_pylist():
        choice = choices.get(str(rid))
        cand = choice.candidate if choice is not None else None
        rows.append(
            {
                "record_id": str(rid),
                "master_record_id": cand.master_record_id if cand else None,
                "match_probability": cand.match_probability if cand else None,
                "match_weight": cand.match_weight if cand else None,
                "band": _capped(band_of(cand.match_probability if cand else None, artefact.thresholds), cand),
            }
        )
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA), artefact
