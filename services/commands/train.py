"""`regsosek train`: train one source's Splink model on a generated world and write a versioned artefact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from linkage.batch import train_artefact, train_with_labels
from linkage.inputs import LinkInputError
from linkage.labels import TARGET_PRECISION, TARGET_RECALL, LabelsInputError, read_labels
from linkage.model.artefact import ModelArtefact, ModelArtefactError, load_artefact, save_artefact
from linkage.model.charts import CHARTS_EXTRA, charts_available
from linkage.model.training import DEFAULT_MAX_PAIRS, DEFAULT_SEED, LABEL_PRIOR_PAIRS
from linkage.normalise.prepare import prepare_table
from linkage.spec import NotEnoughToLink, spec_for_tables
from services.commands.link import ENGINE_HELP, ENGINES, LINK_STEPS, backend, fail, read_table, step_progress, warn
from services.world import WorldInputError, load_world_source

TRAIN_STEPS = ("load", *LINK_STEPS[:6], "write artefact")
LABEL_STEPS = (
    "load",
    "normalise",
    "m (from labels)",
    "prior (from predictions)",
    "predict",
    "choose best",
    "write artefact",
)


def train(
    source: str = typer.Option(..., "--source", help="members, dtks or bpjs (each is linked to the master)."),
    world: Path = typer.Option(..., "--world", help="Folder written by `regsosek generate` (truth is not read)."),
    out: Path = typer.Option(..., "--out", help="Folder under which the versioned artefact folder is created."),
    max_pairs: float = typer.Option(DEFAULT_MAX_PAIRS, "--max-pairs", help="Pairs sampled to estimate u."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the u sampling."),
    charts: bool = typer.Option(True, "--charts/--no-charts", help="Write match-weight and m/u charts."),
    labels: Path | None = typer.Option(
        None, "--labels", help="Labels file (`regsosek review labels`): re-estimate m and calibrate the thresholds."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="With --labels: start from this artefact instead of training unsupervised first."
    ),
    target_precision: float = typer.Option(
        TARGET_PRECISION, "--target-precision", min=0.5, max=1.0, help="With --labels: auto-link precision target."
    ),
    target_recall: float = typer.Option(
        TARGET_RECALL, "--target-recall", min=0.5, max=1.0, help="With --labels: labelled matches kept >= review."
    ),
    prior_pairs: float = typer.Option(
        LABEL_PRIOR_PAIRS, "--label-prior-pairs", min=0.0, help="With --labels: weight of the unsupervised m."
    ),
    engine: str = typer.Option("duckdb", "--engine", help=ENGINE_HELP),
) -> None:
    """Train a model unsupervised (u by sampling, m by EM); write model.json, metadata.json, charts.
    With --labels, then re-estimate m from the labelled matches and calibrate the band thresholds.
    --engine spark runs every Splink step on Spark; the artefact is the same format (DuckDB SQL)."""
    if model is not None and labels is None:
        raise typer.BadParameter("--model only goes with --labels", param_hint="--model")
    if source not in ("members", "dtks", "bpjs"):
        raise typer.BadParameter("expected members, dtks or bpjs", param_hint="--source")
    if engine not in ENGINES:
        raise typer.BadParameter("expected duckdb or spark", param_hint="--engine")
    needed = [
        "population.parquet",
        "crosswalk.parquet",
        {"members": "submissions.jsonl", "dtks": "dtks.parquet", "bpjs": "bpjs.parquet"}[source],
    ]
    for name in needed:
        if not (world / name).exists():
            raise typer.BadParameter(f"{world} has no {name}: generate a world first", param_hint="--world")
    if charts and not charts_available():
        typer.echo(f"charts skipped: {CHARTS_EXTRA}", err=True)  # the model itself does not need them
        charts = False
    db_api = backend(engine)
    console = Console(stderr=True)
    started = time.perf_counter()
    if labels is not None:
        _train_with_labels(
            world, source, out, labels, model, charts, target_precision, target_recall, prior_pairs, db_api
        )
        return
    with step_progress(console, TRAIN_STEPS) as step:
        step("load")
        try:
            master, records = load_world_source(world, source, notes=warn)
        except WorldInputError as e:
            raise fail(str(e)) from None
        step("normalise")
        pm, pr = prepare_table(master), prepare_table(records)
        try:
            spec = spec_for_tables(source, pm, pr)  # type: ignore[arg-type]
        except NotEnoughToLink as e:
            raise fail(str(e)) from None
        artefact = train_artefact(
            pm,
            pr,
            source,  # type: ignore[arg-type]
            max_pairs=max_pairs,
            seed=seed,
            progress=step,
            spec=spec,
            db_api=db_api,
        )
        step("write artefact")
        folder = save_artefact(artefact, out, charts=charts)
    for line in spec.describe():
        typer.echo(f"model spec: {line}", err=True)
    console.print(
        f"[green]model trained[/] on {engine} in {time.perf_counter() - started:.1f}s on {master.num_rows} master "
        f"and {records.num_rows} {source} records -> {folder}"
    )
    typer.echo(str(folder))


def _train_with_labels(
    world: Path,
    source: str,
    out: Path,
    labels_path: Path,
    model: Path | None,
    charts: bool,
    target_precision: float,
    target_recall: float,
    prior_pairs: float,
    db_api: Any | None,
) -> None:
    console = Console(stderr=True)
    started = time.perf_counter()
    try:
        labelled = read_labels(read_table(labels_path, "labels file"))
    except LabelsInputError as e:
        raise fail(f"{labels_path}: {e}") from None
    base: ModelArtefact | None = None
    if model is not None:
        try:
            base = load_artefact(model)
        except ModelArtefactError as e:
            raise typer.BadParameter(str(e), param_hint="--model") from None
        if base.metadata.get("source") != source:
            raise fail(f"the model was trained for {base.metadata.get('source')!r}, not {source!r}")
    steps = LABEL_STEPS if base is not None else (*TRAIN_STEPS[:-1], *LABEL_STEPS[2:])
    try:
        with step_progress(console, steps) as step:
            step("load")
            master, records = load_world_source(world, source, notes=warn)
            if base is None:
                pm, pr = prepare_table(master), prepare_table(records)
                spec = spec_for_tables(source, pm, pr)  # type: ignore[arg-type]
                base = train_artefact(pm, pr, source, progress=step, spec=spec, db_api=db_api)  # type: ignore[arg-type]
            artefact, calibration = train_with_labels(
                master,
                records,
                base,
                labelled,
                prior_pairs=prior_pairs,
                target_precision=target_precision,
                target_recall=target_recall,
                progress=step,
                db_api=db_api,
            )
            step("write artefact")
            folder = save_artefact(artefact, out, charts=charts)
    except (LinkInputError, NotEnoughToLink, WorldInputError) as e:
        raise fail(str(e)) from None
    used = artefact.metadata["labels"]
    if used["matches_used"] == 0 and not calibration.judged:
        typer.echo("warning: no labelled record is in this world's records; m and thresholds are unchanged", err=True)
    before, after = base.thresholds, calibration.thresholds
    typer.echo(
        f"labels: {used['records']} records ({used['positives']} matches, {used['negatives']} non-matching pairs), "
        f"{used['matches_used']} matches used for m, {calibration.judged} best candidates judged",
        err=True,
    )
    typer.echo(
        f"thresholds: auto_link {before['auto_link']:g} -> {after['auto_link']:g}, "
        f"review {before['review']:g} -> {after['review']:g}"
        + (f" (kept: {', '.join(calibration.kept)})" if calibration.kept else ""),
        err=True,
    )
    console.print(f"[green]model trained with labels[/] in {time.perf_counter() - started:.1f}s -> {folder}")
    typer.echo(str(folder))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
