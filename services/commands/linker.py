"""`regsosek serve linker`: the streaming linker (a faust worker in the foreground, stopped by Ctrl-C)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from services.commands.options import bootstrap_option, settings_problems


def serve_linker(
    bootstrap: str = bootstrap_option("REGSOSEK_LINKER_BOOTSTRAP"),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="Folder of the DuckDB link store (env REGSOSEK_LINKER_STATE_DIR)."
    ),
    world_dir: Path | None = typer.Option(
        None, "--world", help="World folder from `regsosek generate` (env REGSOSEK_LINKER_WORLD_DIR)."
    ),
    model_path: Path | None = typer.Option(
        None, "--model", help="Model artefact from `regsosek train` (env REGSOSEK_LINKER_MODEL_PATH)."
    ),
    app_id: str | None = typer.Option(None, "--group", help="Consumer group (env REGSOSEK_LINKER_APP_ID)."),
    updates: bool | None = typer.Option(
        None,
        "--updates/--no-updates",
        help="Apply master and sectoral changes, publish linkage.updates.v1 (env REGSOSEK_LINKER_UPDATES_ENABLED).",
    ),
    decisions: bool | None = typer.Option(
        None,
        "--decisions/--no-decisions",
        help="Apply review decisions from linkage.review.decisions.v1 (env REGSOSEK_LINKER_DECISIONS_ENABLED).",
    ),
    log_level: str = typer.Option("info", "--log-level", help="Log level of the worker."),
) -> None:
    """Link submissions from regsosek.submissions.v1 to linkage.members/families/review.v1."""
    from services.linker.errors import LinkerConfigError
    from services.linker.runner import run_worker
    from services.linker.settings import LinkerSettings

    given: dict[str, Any] = {
        "bootstrap": bootstrap,
        "state_dir": state_dir,
        "world_dir": world_dir,
        "model_path": model_path,
        "app_id": app_id,
        "updates_enabled": updates,
        "decisions_enabled": decisions,
    }
    try:
        settings = LinkerSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(settings_problems(exc)) from None
    for path in (settings.world_dir, settings.model_path):
        if path is not None and not path.exists():
            raise typer.BadParameter(f"{path} does not exist")
    typer.echo(f"linker {settings.app_id} on {settings.bootstrap}, link store {settings.link_store_path}")
    try:
        run_worker(settings, loglevel=log_level)
    except LinkerConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def register_serve(serve_app: typer.Typer) -> None:
    """Add `linker` to the `serve` group."""
    serve_app.command("linker")(serve_linker)
