"""The development CLI, `python -m tools`: commands for a checkout, not for an installed service.

`broker fetch|start|stop|status` (a local Kafka broker from Maven jars), `demo` (the whole pipeline on a
generated world) and `simulate` (a world's submissions at a given rate). The operators' commands are
the `regsosek` CLI (services/cli.py).
"""

from __future__ import annotations

import typer

from tools.commands import broker, demo, simulate

app = typer.Typer(
    name="python -m tools",
    help="REGSOSEK development tooling: local broker, demo and simulator (not shipped).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for _module in (broker, demo, simulate):
    _module.register(app)


def main() -> None:
    from services.privacy.log_redaction import install_log_redaction

    install_log_redaction()  # the same log redaction as `regsosek`: no NIK/KK or payload bytes in logs
    app()


if __name__ == "__main__":
    main()
