"""`regsosek evaluate`: accuracy of links against the generator's truth, side by side with plain Splink."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import typer
from rich.console import Console

from linkage.batch import link_file
from linkage.evaluate import (
    Evaluation,
    EvaluationInputError,
    calibration_table,
    check_evaluation_inputs,
    evaluate_links,
    format_calibration,
    format_side_by_side,
)
from linkage.inputs import LinkInputError
from linkage.labels import (
    LabelsInputError,
    MemberLabels,
    evaluate_against_labels,
    format_label_evaluation,
    label_keys,
    read_labels,
)
from linkage.model.artefact import ModelArtefact, ModelArtefactError, band_of, load_artefact
from linkage.model.baseline import link_baseline
from linkage.normalise.family import choose_best
from linkage.spec import NotEnoughToLink
from services.commands.link import LINK_STEPS, fail, read_table, refuse_existing, step_progress, warn, write_table
from services.world import WorldInputError, load_world_source


def baseline_links(master: pa.Table, records: pa.Table, thresholds: dict[str, float]) -> pa.Table:
    """Plain Splink's best candidate per record (record_id, master_record_id, match_probability, band)."""
    choices = choose_best(link_baseline(master, records))
    rows = []
    for rid in records.column("record_id").to_pylist():
        choice = choices.get(str(rid))
        cand = choice.candidate if choice is not None else None
        rows.append(
            {
                "record_id": str(rid),
                "master_record_id": cand.master_record_id if cand else None,
                "match_probability": cand.match_probability if cand else None,
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
    force: bool = typer.Option(False, "--force", help="With --out: overwrite it when it exists."),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="Labels file (`regsosek review labels`): score the links against the labelled pairs instead of "
        "the truth (the truth too when --truth is given).",
    ),
) -> None:
    """Print precision, recall and F1 of auto-links and auto+review, band shares, errors by noise type and
    a calibration table (predicted probability bins -> observed precision); with --labels, precision,
    recall and F1 against reviewers' labelled pairs."""
    console = Console(stderr=True)
    results: dict[str, Evaluation] = {}
    calibrations: dict[str, str] = {}
    labelled = None
    if labels is not None:
        try:
            labelled = read_labels(read_table(labels, "labels file"))
        except LabelsInputError as e:
            raise fail(f"{labels}: {e}") from None
    if labelled is not None and truth is None:
        table = None
        if world is not None:
            table = _world_links(world, source, model, out, force, console)
        elif links is not None:
            table = read_table(links, "links file")
        else:
            raise typer.BadParameter("give --links or --world with --labels")
        try:
            typer.echo(format_label_evaluation(evaluate_against_labels(table, labelled)))
        except LabelsInputError as e:
            raise fail(str(e)) from None
        return
    if world is not None:
        truth = truth or world / "truth.parquet"
        artefact, master, records = _open_world(world, source, model, out, force)
        truth_table = read_table(truth, "truth file")
        notes: list[str] = []
        try:
            with step_progress(console, (*LINK_STEPS, "plain Splink")) as step:
                ours, used = link_file(
                    master,
                    records,
                    artefact=artefact,
                    source=source,  # type: ignore[arg-type]
                    progress=step,
                    notes=notes.append,
                )
                check_evaluation_inputs(ours, truth_table)
                results["normalised"] = evaluate_links(ours, truth_table)
                calibrations["normalised"] = format_calibration(calibration_table(ours, truth_table), "normalised")
                if baseline:
                    step("plain Splink")
                    plain = baseline_links(master, records, used.thresholds)
                    results["plain Splink"] = evaluate_links(plain, truth_table)
                    calibrations["plain"] = format_calibration(calibration_table(plain, truth_table), "plain Splink")
        except (LinkInputError, NotEnoughToLink, EvaluationInputError) as e:
            raise fail(str(e)) from None
        finally:
            for line in notes:
                typer.echo(line, err=True)
        if out is not None:
            write_table(ours, out)
        if labelled is not None:
            ours = ours.append_column("member_key", pa.array(label_keys(records), pa.string()))
            _print_labels(ours, labelled)
    else:
        if links is None or truth is None:
            raise typer.BadParameter("give --links and --truth, or --world")
        table = read_table(links, "links file")
        truth_table = read_table(truth, "truth file")
        try:
            check_evaluation_inputs(table, truth_table)
        except EvaluationInputError as e:
            raise fail(str(e)) from None
        results["links"] = evaluate_links(table, truth_table)
        calibrations["links"] = format_calibration(calibration_table(table, truth_table))
        if labelled is not None:
            _print_labels(table, labelled)
    typer.echo(format_side_by_side(results))
    for text in calibrations.values():
        typer.echo("")
        typer.echo(text)


def _print_labels(links: pa.Table, labelled: dict[str, MemberLabels]) -> None:
    try:
        typer.echo(format_label_evaluation(evaluate_against_labels(links, labelled)))
    except LabelsInputError as e:
        raise fail(str(e)) from None
    typer.echo("")


def _open_world(
    world: Path, source: str, model: Path | None, out: Path | None, force: bool
) -> tuple[ModelArtefact | None, pa.Table, pa.Table]:
    """The model artefact (None: train on the world), the master and the `source` records of a world;
    bad arguments are one-line errors."""
    if source not in ("members", "dtks", "bpjs"):
        raise typer.BadParameter("expected members, dtks or bpjs", param_hint="--source")
    refuse_existing(out, force)
    if not world.is_dir():
        raise fail(f"{world} is not a folder written by `regsosek generate`")
    artefact = None
    if model is not None:
        try:
            artefact = load_artefact(model)
        except ModelArtefactError as e:
            raise typer.BadParameter(str(e), param_hint="--model") from None
    try:
        master, records = load_world_source(world, source, notes=warn)
    except OSError as e:
        raise fail(f"cannot read the {source} files of {world}: {e.strerror or e}") from None
    except WorldInputError as e:
        raise fail(str(e)) from None
    return artefact, master, records


def _world_links(
    world: Path, source: str, model: Path | None, out: Path | None, force: bool, console: Console
) -> pa.Table:
    """A world's records linked with `model` (else trained on the world), with their label keys."""
    artefact, master, records = _open_world(world, source, model, out, force)
    notes: list[str] = []
    try:
        with step_progress(console, LINK_STEPS) as step:
            ours, _ = link_file(
                master,
                records,
                artefact=artefact,
                source=source,  # type: ignore[arg-type]
                progress=step,
                notes=notes.append,
            )
    except (LinkInputError, NotEnoughToLink) as e:
        raise fail(str(e)) from None
    finally:
        for line in notes:
            typer.echo(line, err=True)
    ours = ours.append_column("member_key", pa.array(label_keys(records), pa.string()))
    if out is not None:
        write_table(ours, out)
    return ours


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
