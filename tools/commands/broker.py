"""`python -m tools broker fetch|start|stop|status`: the local Apache Kafka broker (optionally secured)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from tools import broker as kafka_broker

broker_app = typer.Typer(help="Run the local Apache Kafka broker (KRaft, loopback only).", no_args_is_help=True)

RunDirOption = typer.Option(
    kafka_broker.DEFAULT_RUN_DIR, "--run-dir", help="Folder for the broker's state, data and logs."
)
PortOption = typer.Option(kafka_broker.DEFAULT_PORT, "--port", help="Client (PLAINTEXT) port.")
ControllerPortOption = typer.Option(
    kafka_broker.DEFAULT_CONTROLLER_PORT, "--controller-port", help="KRaft controller port."
)


def config_for(run_dir: Path, port: int, controller_port: int) -> kafka_broker.BrokerConfig:
    """The broker configuration the CLI options describe."""
    return kafka_broker.BrokerConfig(run_dir=run_dir, port=port, controller_port=controller_port)


def _fail(exc: kafka_broker.BrokerError) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


@broker_app.command("fetch")
def fetch_cmd(
    libs_dir: Path = typer.Option(kafka_broker.DEFAULT_LIBS_DIR, "--libs-dir", help="Where the jars go."),
    force: bool = typer.Option(False, "--force", help="Fetch again even if the jars are there."),
) -> None:
    """Copy the Kafka broker jars and tools from Maven Central (only when missing or incomplete)."""
    try:
        fetched = kafka_broker.fetch(libs_dir, force=force)
    except kafka_broker.BrokerError as exc:
        raise _fail(exc) from None
    verb = "fetched" if fetched else "already present"
    typer.echo(
        f"Kafka {kafka_broker.KAFKA_VERSION} jars, the JMX exporter agent and Kafka's tools {verb} in "
        f"{libs_dir}, {kafka_broker.jmx_agent_jar(libs_dir).parent} and "
        f"{kafka_broker.tools_jar(libs_dir).parent}"
    )


@broker_app.command("start")
def start_cmd(
    run_dir: Path = RunDirOption,
    port: int = PortOption,
    controller_port: int = ControllerPortOption,
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve broker metrics (Prometheus JMX exporter agent) on this port."
    ),
    secured: bool = typer.Option(
        False,
        "--secured",
        help="Security mode: a SASL_PLAINTEXT listener with SCRAM-SHA-512 users and ACLs (StandardAuthorizer); "
        "the generated admin password is kept in <run dir>/admin.password.",
    ),
    sasl_port: int = typer.Option(
        kafka_broker.DEFAULT_SASL_PORT, "--sasl-port", help="SASL/SCRAM listener port (--secured)."
    ),
) -> None:
    """Start the broker in the background and wait until it accepts admin requests."""
    config = dataclasses.replace(config_for(run_dir, port, controller_port), metrics_port=metrics_port)
    try:
        if secured:
            config = dataclasses.replace(config, sasl_port=sasl_port)
            st = kafka_broker.start_secured(config)
        else:
            st = kafka_broker.start(config)
    except kafka_broker.BrokerError as exc:
        raise _fail(exc) from None
    if st.already_running:
        typer.echo(f"broker already running (pid {st.pid}) at {st.bootstrap}")
    else:
        typer.echo(
            f"broker started (pid {st.pid}) at {st.bootstrap} in {st.start_seconds:.1f} s; "
            f"RSS {st.rss_mb:.0f} MiB; logs in {config.logs_dir}"
        )
    if secured:
        for line in connection_lines(config):
            typer.echo(line)


def connection_lines(config: kafka_broker.BrokerConfig) -> list[str]:
    """How clients connect to a secured broker (never the password itself, only where it is)."""
    password_file = kafka_broker.admin_password_file(config)
    return [
        f"secured: SASL_PLAINTEXT, SCRAM-SHA-512 at {config.sasl_bootstrap} (ACLs apply to every user); "
        f"{config.bootstrap} stays the loopback operator listener (super user, no login)",
        f"admin credentials: user admin, password in {password_file}",
        f"next: regsosek acl sync --bootstrap {config.sasl_bootstrap} --admin-password-file {password_file} "
        "--registry subscriptions.json --credentials-dir <folder of <principal>.password files>",
        "services log in with REGSOSEK_<SERVICE>_SASL_USERNAME and REGSOSEK_<SERVICE>_SASL_PASSWORD_FILE "
        f"and --bootstrap {config.sasl_bootstrap} (docs/subscriptions.md)",
    ]


@broker_app.command("stop")
def stop_cmd(run_dir: Path = RunDirOption) -> None:
    """Stop the broker (SIGTERM, then SIGKILL after 30 s). Fine when it is not running."""
    stopped = kafka_broker.stop(kafka_broker.BrokerConfig(run_dir=run_dir))
    typer.echo("broker stopped" if stopped else "broker was not running")


@broker_app.command("status")
def status_cmd(run_dir: Path = RunDirOption) -> None:
    """Say whether the broker runs, where, and how much memory it uses. Exit code 3 when stopped."""
    st = kafka_broker.status(kafka_broker.BrokerConfig(run_dir=run_dir))
    if st.running:
        typer.echo(f"running: pid {st.pid} at {st.bootstrap}, RSS {st.rss_mb:.0f} MiB, run dir {st.run_dir}")
        if st.sasl_bootstrap is not None:
            typer.echo(
                f"secured: SASL/SCRAM at {st.sasl_bootstrap}, admin password in "
                f"{kafka_broker.admin_password_file(kafka_broker.BrokerConfig(run_dir=run_dir))}"
            )
    else:
        typer.echo(f"stopped (run dir {st.run_dir})")
        raise typer.Exit(code=3)


def register(app: typer.Typer) -> None:
    """Add the `broker` group to the root CLI."""
    app.add_typer(broker_app, name="broker")
