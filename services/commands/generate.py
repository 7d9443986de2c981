"""`regsosek generate`: write a synthetic REGSOSEK world (master, sectoral data, submissions, truth)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

# The generator is the `synthetic` extra (Faker): imported inside the command, so the services and the
# image run without it and `regsosek --help` does not need it.
MISSING_EXTRA = (
    "error: `regsosek generate` needs the synthetic extra (Faker): pip install 'regsosek-linkage[synthetic]'"
)


def generate(
    out: Path = typer.Option(..., "--out", help="Folder to write the world into (created if missing)."),
    persons: int = typer.Option(..., "--persons", min=1, help="Number of persons in the population master."),
    seed: int = typer.Option(..., "--seed", help="Random seed; the same arguments give the same bytes."),
    regency: str = typer.Option("3603", "--regency", help="Kemendagri regency code, e.g. 3603 (Kab. Tangerang)."),
    profile: str = typer.Option(
        "default", "--profile", help="Noise profile: default, clean, noisy, hard, or a JSON file of rate overrides."
    ),
) -> None:
    """Generate a deterministic synthetic world: population, crosswalk, DTKS, BPJS, submissions, truth."""
    try:
        from synthetic import NoiseProfile, UnknownRegencyError, generate_world
        from synthetic.regions import load_regency
        from synthetic.world import STAGES
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("faker", "synthetic"):
            raise
        typer.echo(MISSING_EXTRA, err=True)
        raise typer.Exit(code=2) from None
    if out.exists() and not out.is_dir():
        typer.echo(f"error: --out {out} exists and is not a folder", err=True)
        raise typer.Exit(code=2)
    try:
        noise = NoiseProfile.named(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--profile") from None
    try:
        load_regency(regency)  # fail before the progress bar starts
    except UnknownRegencyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--regency") from None
    console = Console(stderr=True)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {s: bar.add_task(s, total=1, visible=False) for s in STAGES}

        def report(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=max(total, 1), visible=True)

        try:
            world = generate_world(out, regency=regency, persons=persons, seed=seed, profile=noise, progress=report)
        except UnknownRegencyError as exc:
            raise typer.BadParameter(str(exc), param_hint="--regency") from None
        except ValueError as exc:  # e.g. too many persons for one district and birth date
            raise typer.BadParameter(str(exc), param_hint="--persons") from None
        except OSError as exc:  # e.g. a read-only folder or a full disk: one line, no traceback
            bar.stop()
            typer.echo(f"error: cannot write the world into {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(code=2) from None
    elapsed = time.perf_counter() - started
    console.print(
        f"[green]world written[/] to {out} in {elapsed:.1f}s: {world.persons} persons in "
        f"{world.families} families, {world.submission_count} submissions ({world.member_records} members), "
        f"{world.dtks_rows} DTKS rows, {world.bpjs_rows} BPJS rows"
    )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
