"""The `regsosek` command line: one typer app, each sub-command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="regsosek",
    help="REGSOSEK record linkage: broker, topics, synthetic data, linkage models and services.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.command()
def version() -> None:
    """Print the installed version of the linkage system."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("regsosek-linkage"))


def _register() -> None:
    # Sub-command modules register themselves here; imports are local so `regsosek --help` stays fast
    # for the groups that do not need heavy libraries at import time.
    from services.commands import register_all

    register_all(app)


def main() -> None:
    from services.privacy.log_redaction import install_log_redaction

    install_log_redaction()  # no NIK/KK or payload bytes in any log line, whatever the log level
    _register()
    app()


if __name__ == "__main__":
    main()
