"""`regsosek topics create|check|list`: the Kafka topic catalogue on a broker."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts.topics import catalogue_with
from services.commands.options import bootstrap_option
from services.kafka import topics as topic_admin

topics_app = typer.Typer(help="Provision and check the Kafka topic catalogue.", no_args_is_help=True)

BootstrapOption = bootstrap_option()
PartitionsOption = typer.Option(
    None,
    "--partitions",
    min=1,
    envvar="REGSOSEK_TOPIC_PARTITIONS",
    help="Partitions of every district-partitioned topic (default: the catalogue's 4; national: 64, "
    "docs/capacity.md). Kafka cannot move keys already written: choose it before the first record.",
)
ReplicationOption = typer.Option(
    1,
    "--replication-factor",
    min=1,
    envvar="REGSOSEK_TOPIC_REPLICATION_FACTOR",
    help="Replicas of each new topic (3 on a production cluster of three or more brokers).",
)


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


def _run(bootstrap: str, create: bool, partitions: int | None, replication_factor: int = 1) -> None:
    console = Console()
    catalogue = catalogue_with(partitions)
    try:
        if create:
            report = topic_admin.provision(bootstrap, catalogue, replication_factor=replication_factor)
        else:
            report = topic_admin.check(bootstrap, catalogue)
    except topic_admin.TopicsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    print_report(report, console)
    if not report.ok:
        # Non-zero so scripts and CI notice a broker that does not match the catalogue.
        raise typer.Exit(code=1)


@topics_app.command("create")
def create_cmd(
    bootstrap: str = BootstrapOption,
    partitions: int | None = PartitionsOption,
    replication_factor: int = ReplicationOption,
) -> None:
    """Create the catalogue's missing topics and report existing ones that differ (exit 1 if any)."""
    _run(bootstrap, True, partitions, replication_factor)


@topics_app.command("check")
def check_cmd(bootstrap: str = BootstrapOption, partitions: int | None = PartitionsOption) -> None:
    """Report missing topics and differences from the catalogue without changing anything."""
    _run(bootstrap, False, partitions)


@topics_app.command("list")
def list_cmd(partitions: int | None = PartitionsOption) -> None:
    """Show the catalogue itself (no broker needed)."""
    table = Table()
    table.add_column("topic", no_wrap=True)
    for header in ("partitions", "cleanup", "retention", "tombstones kept"):
        table.add_column(header, no_wrap=True)
    table.add_column("key")
    table.add_column("value")
    for spec in catalogue_with(partitions):
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000} d"
        tombstones = "-"
        if spec.cleanup_policy == "compact":
            kept = spec.tombstone_retention_ms
            tombstones = "1 d (broker default)" if kept is None else f"{kept // 86_400_000} d"
        table.add_row(
            *(escape(cell) for cell in (spec.name, str(spec.partitions), spec.cleanup_policy, retention, tombstones)),
            escape(spec.key),
            escape(spec.value_schema),
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the `topics` group to the root CLI."""
    app.add_typer(topics_app, name="topics")
