"""Shared fixtures. `kafka_broker`: one real Apache Kafka broker per test session, on free ports.

The broker is started by the same code as `python -m tools broker start` (tools/broker.py), in a temporary
run folder, only when a test asks for it. If it cannot start, every test that needs it FAILS with the
broker's log tail: a missing broker must never turn into silently skipped tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer

from services.kafka.topics import provision
from tests.support.broker import ProvisionedBroker, RunningBroker
from tools import broker as broker_service

# A failed start is remembered so later tests fail at once instead of waiting 90 s again each.
_start_error: list[str] = []
# Start time and JVM memory of the session broker, printed in the terminal summary (docs/broker.md).
_broker_figures: dict[str, float] = {}


@pytest.fixture(scope="session")
def kafka_broker_config(tmp_path_factory: pytest.TempPathFactory) -> broker_service.BrokerConfig:
    """Where the session broker runs: a temporary folder and two free ports (jars shared with the CLI)."""
    port, controller_port = broker_service.free_ports(2)
    return broker_service.BrokerConfig(
        run_dir=tmp_path_factory.mktemp("kafka-broker"), port=port, controller_port=controller_port
    )


@pytest.fixture(scope="session")
def kafka_broker(kafka_broker_config: broker_service.BrokerConfig) -> Iterator[RunningBroker]:
    """Start one broker for the session (fetching the jars if needed) and stop it at the end."""
    if _start_error:
        pytest.fail(_start_error[0], pytrace=False)
    config = kafka_broker_config
    try:
        status = broker_service.start(config)
    except broker_service.BrokerError as exc:
        _start_error.append(f"the Kafka broker for the tests could not start: {exc}")
        pytest.fail(_start_error[0], pytrace=False)
    if status.pid is None:
        pytest.fail(f"the Kafka broker reported no pid\n{broker_service.log_tail(config)}", pytrace=False)
    _broker_figures.update(start_s=status.start_seconds or 0.0, rss_start_mb=status.rss_mb or 0.0)
    try:
        yield RunningBroker(config.bootstrap, config, status.pid, status.start_seconds or 0.0)
    finally:
        _broker_figures["rss_end_mb"] = broker_service.status(config).rss_mb or 0.0
        broker_service.stop(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line with the session broker's start-up time and memory, when a test used it."""
    if _broker_figures:
        f = _broker_figures
        terminalreporter.write_line(
            f"kafka broker: ready in {f['start_s']:.1f} s; JVM RSS {f['rss_start_mb']:.0f} MiB after start, "
            f"{f.get('rss_end_mb', 0.0):.0f} MiB at the end of the session"
        )


@pytest.fixture(scope="session")
def cli_app() -> typer.Typer:
    """The `regsosek` typer app with every sub-command group registered (once per session)."""
    from services.cli import _register, app

    _register()
    return app


@pytest.fixture(scope="session")
def dev_cli_app() -> typer.Typer:
    """The development CLI's typer app (`python -m tools`: broker, demo, simulate)."""
    from tools.cli import app

    return app


@pytest.fixture(scope="session")
def kafka_topics(kafka_broker: RunningBroker) -> ProvisionedBroker:
    """Provision the catalogue on the session broker; the report of that first run is kept for tests."""
    report = provision(kafka_broker.bootstrap)
    return ProvisionedBroker(kafka_broker.bootstrap, report)
