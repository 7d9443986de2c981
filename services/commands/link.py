"""`regsosek link`: link a whole file of linkage records to a master file (Splink, DuckDB or Spark)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from linkage.batch import link_file
from linkage.inputs import LinkInputError
from linkage.model.artefact import ModelArtefactError, load_artefact
from linkage.spec import NotEnoughToLink

# The EM passes depend on the columns present (linkage.spec); the bar counts two of them.
LINK_STEPS = (
    "normalise",
    "prior",
    "u (random sampling)",
    "m (EM, first pass)",
    "m (EM, second pass)",
    "prior (from predictions)",
    "predict",
    "choose best",
)


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit-2 exception to raise (data-shaped problems)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def warn(message: str) -> None:
    """Print one warning line (input that was repaired or skipped, not an error)."""
    typer.echo(f"warning: {message}", err=True)


ENGINES = ("duckdb", "spark")
ENGINE_HELP = "Splink backend: duckdb or spark (local[2] mode; needs pyspark and Java 17)."


def backend(engine: str) -> Any | None:
    """The Splink database API of `--engine` (None: DuckDB); exit 2 when Spark cannot start."""
    if engine not in ENGINES:
        raise typer.BadParameter("expected duckdb or spark", param_hint="--engine")
    if engine == "duckdb":
        return None
    from linkage.model.spark import SparkUnavailableError, spark_db_api

    try:
        return spark_db_api()
    except SparkUnavailableError as e:
        raise fail(str(e)) from None


def refuse_existing(out: Path | None, force: bool) -> None:
    """Exit 2 when `out` exists and --force was not given (never overwrite a result by accident)."""
    if out is not None and out.exists() and not force:
        raise fail(f"{out} already exists; choose another --out or pass --force to overwrite it")


@contextmanager
def step_progress(console: Console, steps: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """A progress bar advanced by named steps; unknown step names just update the description."""
    with Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("start", total=len(steps))
        done: set[str] = set()

        def step(name: str) -> None:
            if name in steps and name not in done:
                done.add(name)
                bar.update(task, completed=len(done) - 1)
            bar.update(task, description=name)

        yield step
        bar.update(task, completed=len(steps), description="done")


def read_table(path: Path, what: str) -> pa.Table:
    """A Parquet or CSV file as a table (CSV columns read as text); exit 2 when unreadable."""
    if not path.exists():
        raise typer.BadParameter(f"{what} {path} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            import csv

            import pyarrow.csv as pacsv

            with path.open(encoding="utf-8", newline="") as fh:
                header = next(csv.reader(fh), [])
            # Every column as text: NIKs and codes are digit strings, not numbers.
            types = {c: pa.string() for c in header}
            return pacsv.read_csv(
                path, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
            )
        import pyarrow.parquet as pq

        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
        raise typer.BadParameter(f"cannot read {what} {path}: {e}") from None


def as_linkage_table(table: pa.Table) -> pa.Table:
    """Coerce `birth_year` to integers (CSV gives text; empty means unknown).

    When some value is not an integer the column stays text: preparation then treats those values as
    unknown and `linkage.inputs.unusable_values` counts them for the report."""
    if "birth_year" not in table.column_names:
        return table
    try:
        years = [int(v) if v not in (None, "") else None for v in table.column("birth_year").to_pylist()]
    except (TypeError, ValueError):
        return table
    idx = table.column_names.index("birth_year")
    return table.set_column(idx, "birth_year", pa.array(years, pa.int64()))


def write_table(table: pa.Table, path: Path) -> None:
    """Write Parquet, or CSV when the name ends in .csv (NULL written as an empty field)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path)


def link(
    master: Path = typer.Option(..., "--master", help="Master file (Parquet or CSV) of linkage records."),
    records: Path = typer.Option(..., "--records", help="Records to link (Parquet or CSV), same columns."),
    out: Path = typer.Option(..., "--out", help="Output links file (.parquet, or .csv)."),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Model artefact folder or its model.json; without it a model is trained on the given files first.",
    ),
    source: str = typer.Option("members", "--source", help="Model settings to train: members, dtks or bpjs."),
    engine: str = typer.Option("duckdb", "--engine", help=ENGINE_HELP + " Trains there too without --model."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out when it exists."),
) -> None:
    """Link every record of a file to the master file; write one link (or none) per record.

    The model (trained here or given) uses only the columns filled in both files; its choice is printed."""
    if source not in ("members", "dtks", "bpjs"):
        raise typer.BadParameter("expected members, dtks or bpjs", param_hint="--source")
    if engine not in ENGINES:
        raise typer.BadParameter("expected duckdb or spark", param_hint="--engine")
    refuse_existing(out, force)
    console = Console(stderr=True)
    artefact = None
    if model is not None:
        try:
            artefact = load_artefact(model)
        except ModelArtefactError as e:
            raise typer.BadParameter(str(e), param_hint="--model") from None
    master_table = as_linkage_table(read_table(master, "master file"))
    records_table = as_linkage_table(read_table(records, "records file"))
    db_api = backend(engine)
    started = time.perf_counter()
    notes: list[str] = []
    try:
        with step_progress(console, LINK_STEPS) as step:
            links, _ = link_file(
                master_table,
                records_table,
                artefact=artefact,
                source=source,  # type: ignore[arg-type]
                db_api=db_api,
                progress=step,
                notes=notes.append,
            )
    except (LinkInputError, NotEnoughToLink) as e:
        raise fail(str(e)) from None
    finally:
        for line in notes:
            typer.echo(line, err=True)
    write_table(links, out)
    bands = links.column("band").value_counts().to_pylist()
    summary = ", ".join(f"{b['values']} {b['counts']}" for b in bands)
    console.print(
        f"[green]linked[/] {links.num_rows} records in {time.perf_counter() - started:.1f}s ({summary}) -> {out}"
    )


def register(app: typer.Typer) -> None:
    app.command("link")(link)
