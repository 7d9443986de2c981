"""`regsosek serve <service>`: run one of the long-lived services in the foreground.

Each service's command module adds its own sub-command through `register_serve(serve_app)`; add a
service by appending its module name to SERVICE_MODULES.
"""

from __future__ import annotations

import importlib

import typer

# One line per service module; each defines `register_serve(serve_app: typer.Typer) -> None`.
SERVICE_MODULES: tuple[str, ...] = (
    "gateway",
    "linker",
    "publisher",
    "review",
)


def register(app: typer.Typer) -> None:
    serve_app = typer.Typer(help="Run a long-lived service in the foreground.", no_args_is_help=True)
    for name in SERVICE_MODULES:
        importlib.import_module(f"services.commands.{name}").register_serve(serve_app)
    app.add_typer(serve_app, name="serve")
