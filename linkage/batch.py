"""Batch linkage of a whole file of linkage records against a master file (Splink on DuckDB or Spark).

Used for backfills of a sectoral database or a survey dump: prepare both files, train a model when
none is given, predict all blocked pairs with Splink, then pick each record's best master record
(one-to-one inside a family submission when family context is present; close candidates ordered by
the head's name when the master has a `relationship` column) and band it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from linkage.comparisons import Source
from linkage.engine.relatives import without_relative_niks
from linkage.inputs import MissingColumnError, check_columns, check_input, unusable_values
from linkage.labels import (
    TARGET_PRECISION,
    TARGET_RECALL,
    Calibration,
    MemberLabels,
    calibrate_thresholds,
    label_keys,
)
from linkage.model.artefact import ModelArtefact, band_of, build_metadata, regularise, table_sha256
from linkage.model.splink_session import build_linker, candidates_of, dialect_of, model_for_backend
from linkage.model.training import (
    DEFAULT_MAX_PAIRS,
    DEFAULT_SEED,
    LABEL_PRIOR_PAIRS,
    m_from_labels,
    refined_prior,
    train_model,
)
from linkage.normalise.family import Candidate, HeadContext, choose_best, master_heads, member_heads
from linkage.normalise.prepare import prepare_table
from linkage.spec import ModelSpec, spec_for_tables

__all__ = [
    "MissingColumnError",
    "check_columns",
    "link_file",
    "predict_pairs",
    "train_artefact",
    "train_with_labels",
]

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
    db_api: Any | None = None,
) -> ModelArtefact:
    """Train, regularise and describe a model (not yet written to disk), on `db_api`'s backend (DuckDB
    when None; `train_model`).

    Without `spec` it is chosen from the tables' fill rates (`linkage.spec.choose_spec`; raises
    `linkage.spec.NotEnoughToLink` when they cannot support a model)."""
    spec = spec or spec_for_tables(source, prepared_master, prepared_records)
    model = regularise(
        train_model(
            prepared_master,
            prepared_records,
            spec,
            max_pairs=max_pairs,
            seed=seed,
            progress=progress,
            db_api=db_api,
        )
    )
    data_hash = table_sha256(prepared_master, prepared_records)
    training = {"max_pairs": max_pairs, "seed": seed, "engine": dialect_of(db_api)}
    meta = build_metadata(source, data_hash, training=training, spec=spec)
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
        artefact = train_artefact(pm, pr, source, progress=step, spec=spec, db_api=db_api)
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


def label_judgements(
    links: pa.Table, labels: dict[str, MemberLabels], keys: list[str] | None = None
) -> list[tuple[float, bool]]:
    """`(probability, right)` of each labelled record's best candidate that the labels judge (`keys`: the
    links rows' label keys, when the links table cannot tell them, e.g. `label_keys` of its records)."""
    out = []
    for key, mid, prob in zip(
        keys if keys is not None else label_keys(links),
        links.column("master_record_id").to_pylist(),
        links.column("match_probability").to_pylist(),
        strict=True,
    ):
        member = labels.get(key)
        verdict = member.verdict(str(mid) if mid else None) if member is not None else None
        if verdict is not None and prob is not None:
            out.append((float(prob), verdict))
    return out


def reband(links: pa.Table, before: dict[str, float], after: dict[str, float]) -> pa.Table:
    """`links` banded by `before` re-banded under the thresholds `after` (a capped pair stays capped:
    it is the one in review at or above `before`'s auto-link threshold)."""
    bands = []
    for prob, band in zip(links.column("match_probability").to_pylist(), links.column("band").to_pylist(), strict=True):
        capped = band == "review" and prob is not None and prob >= before["auto_link"]
        new = band_of(prob, after)
        bands.append("review" if capped and new == "auto_link" else new)
    i = links.column_names.index("band")
    return links.set_column(i, "band", pa.array(bands, pa.string()))


def train_with_labels(
    master: pa.Table,
    records: pa.Table,
    base: ModelArtefact,
    labels: dict[str, MemberLabels],
    *,
    prior_pairs: float = LABEL_PRIOR_PAIRS,
    target_precision: float = TARGET_PRECISION,
    target_recall: float = TARGET_RECALL,
    progress: Progress | None = None,
    links_out: list[pa.Table] | None = None,
    db_api: Any | None = None,
) -> tuple[ModelArtefact, Calibration]:
    """`base` retrained with labels: m from the labelled matches (`m_from_labels`), the prior re-estimated,
    then the records linked with the new model and the thresholds calibrated on the labelled records'
    best candidates (`calibrate_thresholds`). `master`/`records` are linkage-record tables (not prepared);
    labels are matched to records by `label_keys`. `links_out`, when given, receives the records' links
    under the new model and thresholds. Splink runs on `db_api` (DuckDB when None)."""
    step = progress or (lambda _msg: None)
    step("normalise")
    pm, pr = prepare_table(master), prepare_table(records)
    ids = [str(r) for r in records.column("record_id").to_pylist()]
    keys = label_keys(records)
    master_ids = {str(m) for m in master.column("record_id").to_pylist()}
    matches = [
        (rid, str(labels[key].positive))
        for rid, key in zip(ids, keys, strict=True)
        if key in labels and labels[key].positive in master_ids
    ]
    step("m (from labels)")
    model = m_from_labels(pm, pr, base.model, matches, prior_pairs=prior_pairs, db_api=db_api, spec=base.spec)
    step("prior (from predictions)")
    on_backend = model_for_backend(regularise(model), base.spec, db_api)
    model["probability_two_random_records_match"] = refined_prior(pm, pr, on_backend, db_api=db_api)
    model = regularise(model)
    meta = json.loads(json.dumps(base.metadata))
    relabelled = ModelArtefact(model, meta)
    source: Source = base.metadata["source"]
    links, _ = link_file(master, records, artefact=relabelled, source=source, progress=step, db_api=db_api)
    calibration = calibrate_thresholds(
        label_judgements(links, labels, keys),
        base.thresholds,
        target_precision=target_precision,
        target_recall=target_recall,
    )
    if links_out is not None:
        links_out.append(reband(links, base.thresholds, calibration.thresholds))
    positives = sum(m.positive is not None for m in labels.values())
    meta.update(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        thresholds=calibration.thresholds,
        labels={
            "records": len(labels),
            "positives": positives,
            "negatives": sum(len(m.negatives) for m in labels.values()),
            "matches_used": len(matches),
            "prior_pairs": prior_pairs,
            "base_training_data_sha256": base.metadata.get("training_data_sha256"),
            "calibration": calibration.to_metadata(target_precision, target_recall),
        },
    )
    return ModelArtefact(model, meta), calibration
