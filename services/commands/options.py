"""Options shared by several `regsosek` commands: one definition, so every command reads them the same way.

The broker address (`--bootstrap`) is resolved for every command that talks to Kafka in this order,
first one set wins:

1. the `--bootstrap` option;
2. the command's own variable, where it has one (`REGSOSEK_GATEWAY_BOOTSTRAP`,
   `REGSOSEK_LINKER_BOOTSTRAP`, `REGSOSEK_PUBLISHER_BOOTSTRAP`, `REGSOSEK_REVIEW_BOOTSTRAP`,
   `REGSOSEK_ACL_BOOTSTRAP`), as read before this option existed;
3. `REGSOSEK_BOOTSTRAP`, shared by every command;
4. the default, `127.0.0.1:<port>` of the local development broker (`python -m tools broker start`): its PLAINTEXT port
   19092, or its SASL port 19094 for commands that connect through the secured listener (`acl sync`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

#: The variable every Kafka command reads its broker address from (after its own, if it has one).
BOOTSTRAP_ENV = "REGSOSEK_BOOTSTRAP"
#: The local development broker's PLAINTEXT port (`python -m tools broker start`, tools/broker.py).
LOCAL_BROKER_PORT = 19092
#: The local secured development broker's SASL/SCRAM port (`python -m tools broker start --secured`).
LOCAL_BROKER_SASL_PORT = 19094
#: The local broker's PLAINTEXT listener.
DEFAULT_BOOTSTRAP = f"127.0.0.1:{LOCAL_BROKER_PORT}"
#: The local secured broker's SASL listener.
DEFAULT_SASL_BOOTSTRAP = f"127.0.0.1:{LOCAL_BROKER_SASL_PORT}"


def bootstrap_envvars(service_env: str | None = None) -> list[str]:
    """The variables `--bootstrap` falls back to, in precedence order."""
    return [service_env, BOOTSTRAP_ENV] if service_env else [BOOTSTRAP_ENV]


def bootstrap_option(service_env: str | None = None, *, default: str | None = DEFAULT_BOOTSTRAP, what: str = "") -> Any:
    """The `--bootstrap` option of a Kafka command (precedence in this module's docstring)."""
    return typer.Option(
        default,
        "--bootstrap",
        envvar=bootstrap_envvars(service_env),
        show_envvar=True,
        help=f"Kafka bootstrap servers host:port[,host:port]{what}; variables in precedence order:",
    )


def settings_problems(exc: ValidationError) -> str:
    """A service's settings errors as one line: `field: problem; ...` (`settings:` for whole-object checks)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
    )
