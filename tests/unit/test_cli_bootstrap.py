"""Every command that talks to Kafka takes the broker address the same way (services/commands/options.py): the
`regsosek` CLI's and the development CLI's (`python -m tools`, tools/commands/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from services.commands.options import BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP

ROOT = Path(__file__).resolve().parents[2]
COMMANDS_DIRS = (ROOT / "services" / "commands", ROOT / "tools" / "commands")

# command path -> its own variable (kept from before the shared option) or None
KAFKA_COMMANDS: dict[str, str | None] = {
    "topics create": None,
    "topics check": None,
    "simulate": None,  # the development CLI's
    "acl sync": "REGSOSEK_ACL_BOOTSTRAP",
    "serve gateway": "REGSOSEK_GATEWAY_BOOTSTRAP",
    "serve linker": "REGSOSEK_LINKER_BOOTSTRAP",
    "serve publisher": "REGSOSEK_PUBLISHER_BOOTSTRAP",
    "serve review": "REGSOSEK_REVIEW_BOOTSTRAP",
    "review labels": "REGSOSEK_REVIEW_BOOTSTRAP",
}


# typer vendors its own click: its commands and parameters are handled by duck typing here.
Command = Any


def _walk(command: Command, path: str = "") -> Iterator[tuple[str, Command]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}".strip())
    else:
        yield path, command


@pytest.fixture(scope="module")
def commands(cli_app: typer.Typer, dev_cli_app: typer.Typer) -> dict[str, Command]:
    shipped = dict(_walk(typer.main.get_command(cli_app)))
    dev = dict(_walk(typer.main.get_command(dev_cli_app)))
    assert not shipped.keys() & dev.keys()  # one command, one CLI
    return shipped | dev


def _bootstrap(command: Command) -> Any:
    return next((p for p in command.params if p.name == "bootstrap"), None)


def test_every_kafka_command_takes_the_shared_bootstrap_option(commands: dict[str, Command]) -> None:
    with_bootstrap = {path for path, cmd in commands.items() if _bootstrap(cmd) is not None}
    assert with_bootstrap == set(KAFKA_COMMANDS)
    for path, own in KAFKA_COMMANDS.items():
        param = _bootstrap(commands[path])
        assert param is not None
        assert param.opts == ["--bootstrap"], path
        assert param.envvar == ([own, BOOTSTRAP_ENV] if own else [BOOTSTRAP_ENV]), path
        # acl sync picks the SASL or PLAINTEXT listener by --plaintext; every other command one default.
        assert param.default == (None if path == "acl sync" else DEFAULT_BOOTSTRAP), path


def test_no_command_module_defines_its_own_bootstrap_option() -> None:
    defining = sorted(p.name for d in COMMANDS_DIRS for p in d.glob("*.py") if '"--bootstrap"' in p.read_text())
    assert defining == ["options.py"]


def _resolved(command: Command, args: list[str]) -> object:
    # Parse the real command's parameters (resilient: required options of other kinds may be missing).
    with command.make_context("regsosek", args, resilient_parsing=True) as ctx:
        return ctx.params["bootstrap"]


@pytest.mark.parametrize("path", ["serve linker", "serve publisher", "serve gateway", "serve review", "acl sync"])
def test_precedence_option_then_service_variable_then_shared_variable(
    commands: dict[str, Command], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = KAFKA_COMMANDS[path]
    assert own is not None
    cmd = commands[path]
    monkeypatch.delenv(own, raising=False)
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    assert _resolved(cmd, []) == (None if path == "acl sync" else "127.0.0.1:19092")
    monkeypatch.setenv(BOOTSTRAP_ENV, "shared:1")
    assert _resolved(cmd, []) == "shared:1"
    monkeypatch.setenv(own, "service:2")
    assert _resolved(cmd, []) == "service:2"
    assert _resolved(cmd, ["--bootstrap", "option:3"]) == "option:3"


@pytest.mark.parametrize("path", ["topics create", "topics check", "simulate"])
def test_commands_without_a_service_variable_read_the_shared_one(
    commands: dict[str, Command], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    assert _resolved(commands[path], []) == DEFAULT_BOOTSTRAP
    monkeypatch.setenv(BOOTSTRAP_ENV, "shared:1")
    assert _resolved(commands[path], []) == "shared:1"
    assert _resolved(commands[path], ["--bootstrap", "option:3"]) == "option:3"


def test_the_option_reaches_the_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands pass the resolved address to the settings explicitly, which wins over their env.
    from services.linker.settings import LinkerSettings

    monkeypatch.setenv("REGSOSEK_LINKER_BOOTSTRAP", "service:2")
    assert LinkerSettings(bootstrap="option:3").bootstrap == "option:3"
