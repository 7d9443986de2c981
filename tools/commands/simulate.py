"""`python -m tools simulate`: stream a generated world's submissions at a given rate, via Kafka or the gateway."""

from __future__ import annotations

import asyncio
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from contracts.topics import SUBMISSIONS
from services.commands.options import bootstrap_option

if TYPE_CHECKING:  # the simulator pulls in aiokafka and httpx; import it only when the command runs
    from tools.simulator import SimulationReport


class Via(StrEnum):
    """Where the simulated devices send their submissions."""

    kafka = "kafka"
    gateway = "gateway"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in "30", "30s", "2m", "1.5h" or "500ms"; BadParameter otherwise."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a positive duration such as 30, 30s, 2m or 500ms")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def simulate_cmd(
    rate: float = typer.Option(..., "--rate", min=0.001, help="Submissions per second to offer."),
    duration: str = typer.Option(..., "--duration", help="How long to stream: 30, 30s, 2m, 500ms."),
    world: Path = typer.Option(..., "--world", help="World folder written by `regsosek generate`."),
    via: Via = typer.Option(Via.kafka, "--via", help="Produce to Kafka directly, or POST to the gateway."),
    bootstrap: str = bootstrap_option(what=" (--via kafka)"),
    topic: str = typer.Option(SUBMISSIONS, "--topic", help="Submissions topic (--via kafka)."),
    gateway_url: str = typer.Option("http://127.0.0.1:8080", "--gateway-url", help="Gateway base URL."),
    token: str | None = typer.Option(
        None, "--token", envvar="REGSOSEK_SIMULATE_TOKEN", help="Team bearer token (--via gateway)."
    ),
    concurrency: int = typer.Option(32, "--concurrency", min=1, help="Most submissions in flight."),
    timeout_s: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds per send before giving up."),
) -> None:
    """Stream submissions.jsonl at --rate per second for --duration; exit 1 if any was rejected."""
    from tools.simulator import SUBMISSIONS_FILE

    seconds = parse_duration(duration)
    source = world / SUBMISSIONS_FILE
    if not source.is_file():
        raise typer.BadParameter(
            f"{source} does not exist; create a world with `regsosek generate`", param_hint="--world"
        )
    if via is Via.gateway and not token:
        raise typer.BadParameter("--via gateway needs a team token (--token or REGSOSEK_SIMULATE_TOKEN)")
    report = asyncio.run(
        _run(world, via, rate, seconds, bootstrap, topic, gateway_url, token or "", concurrency, timeout_s)
    )
    _print_summary(report, rate)
    if report.rejected or report.unreadable:
        raise typer.Exit(code=1)


async def _run(
    world: Path,
    via: Via,
    rate: float,
    seconds: float,
    bootstrap: str,
    topic: str,
    gateway_url: str,
    token: str,
    concurrency: int,
    timeout_s: float,
) -> SimulationReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tools.simulator import (
        GatewaySender,
        KafkaSender,
        SubmissionSender,
        planned_count,
        read_submissions,
        simulate,
    )

    sender: SubmissionSender
    if via is Via.kafka:
        sender = KafkaSender(bootstrap, topic, timeout_s=timeout_s)
    else:
        sender = GatewaySender(gateway_url, token, timeout_s=timeout_s)
    columns = (
        TextColumn(f"[bold]simulate via {via.value}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accepted [green]{task.fields[accepted]}[/] rejected [red]{task.fields[rejected]}[/]"),
        TextColumn("{task.fields[per_s]:.0f}/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("send", total=planned_count(rate, seconds), accepted=0, rejected=0, per_s=0.0)
        started = asyncio.get_running_loop().time()

        def update(report: SimulationReport) -> None:
            elapsed = max(1e-6, asyncio.get_running_loop().time() - started)
            progress.update(
                task,
                completed=report.sent + report.unreadable,
                accepted=report.accepted,
                rejected=report.sent - report.accepted,
                per_s=report.sent / elapsed,
            )

        try:
            report = await simulate(
                read_submissions(world),
                sender,
                rate=rate,
                duration_s=seconds,
                concurrency=concurrency,
                on_outcome=update,
            )
        finally:
            await sender.close()
        progress.update(task, total=report.sent + report.unreadable)
        update(report)
    return report


def _print_summary(report: SimulationReport, rate: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="simulate: outcome", show_header=False)
    table.add_row("sent", str(report.sent))
    table.add_row("accepted", str(report.accepted))
    for label, count in report.rejected.items():
        table.add_row(f"rejected ({label})", str(count))
    if report.unreadable:
        table.add_row("not sent (no readable family key)", str(report.unreadable))
    achieved = report.sent / report.elapsed_s if report.elapsed_s > 0 else 0.0
    table.add_row("offered / achieved rate", f"{rate:g}/s / {achieved:.1f}/s")
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        value = report.latency_percentile(q)
        if value is not None:
            table.add_row(f"latency {label}", f"{value * 1000:.1f} ms")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
