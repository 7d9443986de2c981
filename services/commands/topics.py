"""`regsosek topics create|check|list`: the Kafka topic catalogue on a broker."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from contracts.topics import CATALOGUE
from services.commands.options import bootstrap_option
from services.kafka import topics as topic_admin

topics_app = typer.Typer(help="Provision and check the Kafka topic catalogue.", no_args_is_help=True)

BootstrapOption = bootstrap_option()


def print_report(report: topic_admin.TopicReport, console: Console) -> None:
    """Print a provisioning or check report: one line per topic, then the differences."""
    for name in report.created:
        console.print(f"[green]created[/]   {name}")
    for name in report.unchanged:
        console.print(f"ok        {name}")
    for name in report.missing:
        console.print(f"[red]missing[/]   {name}")
    for diff in report.differences:
        console.print(f"[yellow]differs[/]   {diff}")


def _run(bootstrap: str, create: bool) -> None:
    console = Console()
    try:
        report = topic_admin.provision(bootstrap) if create else topic_admin.check(bootstrap)
    except topic_admin.TopicsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    print_report(report, console)
    if not report.ok:
        # Non-zero so scripts and CI notice a broker that does not match the catalogue.
        raise typer.Exit(code=1)


@topics_app.command("create")
def create_cmd(bootstrap: str = BootstrapOption) -> None:
    """Create the catalogue's missing topics and report existing ones that differ (exit 1 if any)."""
    _run(bootstrap, create=True)


@topics_app.command("check")
def check_cmd(bootstrap: str = BootstrapOption) -> None:
    """Report missing topics and differences from the catalogue without changing anything."""
    _run(bootstrap, create=False)


@topics_app.command("list")
def list_cmd() -> None:
    """Show the catalogue itself (no broker needed)."""
    table = Table()
    table.add_column("topic", no_wrap=True)
    for header in ("partitions", "cleanup", "retention", "tombstones kept"):
        table.add_column(header, no_wrap=True)
    table.add_column("key")
    table.add_column("value", no_wrap=True)
    for spec in CATALOGUE:
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000} d"
        tombstones = "-"
        if spec.cleanup_policy == "compact":
            kept = spec.tombstone_retention_ms
            tombstones = "1 d (broker default)" if kept is None else f"{kept // 86_400_000} d"
        table.add_row(
            spec.name, str(spec.partitions), spec.cleanup_policy, retention, tombstones, spec.key, spec.value_schema
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the `topics` group to the root CLI."""
    app.add_typer(topics_app, name="topics")
