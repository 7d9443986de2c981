"""`regsosek evaluate`: accuracy of links against the generator's truth, side by side with plain Splink."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console

from linkage.batch import link_file
from linkage.evaluate import Evaluation, evaluate_links, format_side_by_side
from linkage.model.artefact import ModelArtefactError, band_of, load_artefact
from linkage.model.baseline import link_baseline
from linkage.normalise.family import choose_best
from linkage.records import load_world_source
from services.commands.link import LINK_STEPS, read_table, step_progress, write_table


def _baseline_links(master: pa.Table, records: pa.Table, thresholds: dict[str, float]) -> pa.Table:
    choices = choose_best(link_baseline(master, records))
    rows = []
    for rid in records.column("record_id").to_pylist():
        choice = choices.get(str(rid))
        cand = choice.candidate if choice is not None else None
        rows.append(
            {
                "record_id": str(rid),
                "master_record_id": cand.master_record_id if cand else None,
                "band": band_of(cand.match_probability if cand else None, thresholds),
            }
        )
    return pa.Table.from_pylist(rows)


def evaluate(
    links: Path | None = typer.Option(None, "--links", help="Links file written by `regsosek link`."),
    truth: Path | None = typer.Option(None, "--truth", help="truth.parquet of the world the links come from."),
    world: Path | None = typer.Option(
        None,
        "--world",
        help="Instead of --links: link this world's records now, with our model and with plain Splink, and compare.",
    ),
    source: str = typer.Option("members", "--source", help="With --world: members, dtks or bpjs."),
    model: Path | None = typer.Option(
        None, "--model", help="With --world: model artefact (else trained unsupervised on the world's files)."
    ),
    out: Path | None = typer.Option(None, "--out", help="With --world: also write our links here."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="With --world: also run plain Splink."),
) -> None:
    """Print precision, recall and F1 of auto-links and auto+review, band shares and errors by noise type."""
    console = Console(stderr=True)
    results: dict[str, Evaluation] = {}
    if world is not None:
        truth = truth or world / "truth.parquet"
        if source not in ("members", "dtks", "bpjs"):
            raise typer.BadParameter("expected members, dtks or bpjs", param_hint="--source")
        artefact = None
        if model is not None:
            try:
                artefact = load_artefact(model)
            except ModelArtefactError as e:
                raise typer.BadParameter(str(e), param_hint="--model") from None
        master, records = load_world_source(str(world), source)
        with step_progress(console, (*LINK_STEPS, "plain Splink")) as step:
            ours, used = link_file(
                master,
                records,
                artefact=artefact,
                source=source,  # type: ignore[arg-type]
                progress=step,
            )
            truth_table = pq.read_table(truth)
            results["normalised"] = evaluate_links(ours, truth_table)
            if baseline:
                step("plain Splink")
                results["plain Splink"] = evaluate_links(_baseline_links(master, records, used.thresholds), truth_table)
        if out is not None:
            write_table(ours, out)
    else:
        if links is None or truth is None:
            raise typer.BadParameter("give --links and --truth, or --world")
        table = read_table(links, "links file")
        for column in ("record_id", "master_record_id", "band"):
            if column not in table.column_names:
                console.print(
                    f"[red]error:[/] links file has no column {column!r}; expected record_id, "
                    "master_record_id, match_probability, match_weight, band"
                )
                raise typer.Exit(2)
        results["links"] = evaluate_links(table, read_table(truth, "truth file"))
    typer.echo(format_side_by_side(results))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
