"""Sub-command groups of the `regsosek` CLI. Each module exposes `register(app)`."""

from __future__ import annotations

import importlib

import typer

# One line per command module; each module defines `register(app: typer.Typer) -> None`.
COMMAND_MODULES: tuple[str, ...] = (
    "topics",
    "generate",
    "contracts",
    "serve",
    "train",
    "link",
    "evaluate",
    "subscriptions",
    "audit",
    "acl",
    "review",
    "teams",
)


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"services.commands.{name}").register(app)
