"""`regsosek teams add|list|remove`: integration teams in the registry (read access to linkage topics).

A team is a Kafka principal like a subscriber: `acl sync` gives it read on the linkage topics it is
registered for, with consumer groups `integration.<id>.*`. Reserved principals are refused the same way
as subscriber ids (exit 2, one line, registry unchanged).
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from contracts.subscriptions import INTEGRATION_TOPICS, IntegrationTeam
from services.commands.subscriptions import RegistryOption, _load, _problems, _refuse_reserved, _remove
from services.publisher.registry_file import save_registry

teams_app = typer.Typer(help="Manage integration teams (read access to linkage topics).", no_args_is_help=True)


@teams_app.command("add")
def add_cmd(
    team_id: str = typer.Argument(..., help="Team id, e.g. integration-dwh (its Kafka login)."),
    purpose_text: str = typer.Option(..., "--purpose", help="What the team uses the linkage topics for."),
    topics: list[str] = typer.Option(
        ..., "--topic", help=f"A linkage topic it may read (repeat): {', '.join(sorted(INTEGRATION_TOPICS))}."
    ),
    super_users: str = typer.Option(
        "",
        "--super-users",
        envvar="REGSOSEK_KAFKA_SUPER_USERS",
        help="The broker's super.users when it has more than User:admin;User:ANONYMOUS.",
    ),
    registry_path: Path = RegistryOption,
) -> None:
    """Add an integration team; the registry version goes up by one."""
    _refuse_reserved("team", team_id, super_users)
    registry = _load(registry_path)
    try:
        team = IntegrationTeam(team_id=team_id, purpose_text=purpose_text, topics=tuple(topics))
        updated = registry.with_team(team)
    except ValidationError as exc:
        raise typer.BadParameter(_problems(exc)) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    save_registry(registry_path, updated)
    typer.echo(
        f"added team {team_id}: read {', '.join(team.topics)}, groups {team.group_prefix}* "
        f"(registry version {updated.registry_version})"
    )


@teams_app.command("remove")
def remove_cmd(team_id: str = typer.Argument(...), registry_path: Path = RegistryOption) -> None:
    """Remove a team (the next `acl sync` deletes its grants and login); the version goes up by one."""
    updated = _remove(registry_path, lambda r: r.without_team(team_id), f"no integration team {team_id!r}")
    typer.echo(f"removed team {team_id} (registry version {updated.registry_version})")


@teams_app.command("list")
def list_cmd(registry_path: Path = RegistryOption) -> None:
    """Show every integration team: topics, consumer group prefix, purpose."""
    registry = _load(registry_path)
    table = Table(title=f"integration teams (registry version {registry.registry_version})")
    for col in ("team", "topics", "groups", "purpose"):
        table.add_column(col)
    for t in registry.integration_teams:
        table.add_row(t.team_id, ", ".join(t.topics), f"{t.group_prefix}*", t.purpose_text)
    Console(width=200).print(table)


def register(app: typer.Typer) -> None:
    """Add the `teams` group."""
    app.add_typer(teams_app, name="teams")
