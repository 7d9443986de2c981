"""`regsosek train`: train one source's Splink model on a generated world and write a versioned artefact."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from linkage.batch import train_artefact
from linkage.model.artefact import save_artefact
from linkage.model.training import DEFAULT_MAX_PAIRS, DEFAULT_SEED
from linkage.normalise.prepare import prepare_table
from linkage.records import load_world_source
from linkage.spec import NotEnoughToLink, spec_for_tables
from services.commands.link import LINK_STEPS, fail, step_progress

TRAIN_STEPS = ("load", *LINK_STEPS[:6], "write artefact")


def train(
    source: str = typer.Option(..., "--source", help="members, dtks or bpjs (each is linked to the master)."),
    world: Path = typer.Option(..., "--world", help="Folder written by `regsosek generate` (truth is not read)."),
    out: Path = typer.Option(..., "--out", help="Folder under which the versioned artefact folder is created."),
    max_pairs: float = typer.Option(DEFAULT_MAX_PAIRS, "--max-pairs", help="Pairs sampled to estimate u."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the u sampling."),
    charts: bool = typer.Option(True, "--charts/--no-charts", help="Write match-weight and m/u charts."),
) -> None:
    """Train a model unsupervised (u by sampling, m by EM); write model.json, metadata.json, charts."""
    if source not in ("members", "dtks", "bpjs"):
        raise typer.BadParameter("expected members, dtks or bpjs", param_hint="--source")
    needed = [
        "population.parquet",
        "crosswalk.parquet",
        {"members": "submissions.jsonl", "dtks": "dtks.parquet", "bpjs": "bpjs.parquet"}[source],
    ]
    for name in needed:
        if not (world / name).exists():
            raise typer.BadParameter(f"{world} has no {name}: generate a world first", param_hint="--world")
    console = Console(stderr=True)
    started = time.perf_counter()
    with step_progress(console, TRAIN_STEPS) as step:
        step("load")
        master, records = load_world_source(str(world), source)
        step("normalise")
        pm, pr = prepare_table(master), prepare_table(records)
        try:
            spec = spec_for_tables(source, pm, pr)  # type: ignore[arg-type]
        except NotEnoughToLink as e:
            raise fail(str(e)) from None
        artefact = train_artefact(
            pm, pr, source, max_pairs=max_pairs, seed=seed, progress=step, spec=spec  # type: ignore[arg-type]
        )
        step("write artefact")
        folder = save_artefact(artefact, out, charts=charts)
    for line in spec.describe():
        typer.echo(f"model spec: {line}", err=True)
    console.print(
        f"[green]model trained[/] in {time.perf_counter() - started:.1f}s on {master.num_rows} master "
        f"and {records.num_rows} {source} records -> {folder}"
    )
    typer.echo(str(folder))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
