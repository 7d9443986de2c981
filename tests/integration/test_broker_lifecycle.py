"""Broker lifecycle on its own broker in a temporary folder (the session broker is left alone)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer

from tools import broker

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.broker


def test_start_is_idempotent_and_stop_stops(tmp_path: Path, dev_cli_app: typer.Typer) -> None:
    from typer.testing import CliRunner

    port, controller_port = broker.free_ports(2)
    config = broker.BrokerConfig(run_dir=tmp_path / "b", port=port, controller_port=controller_port)
    first = broker.start(config)
    try:
        assert first.running and not first.already_running and first.pid is not None
        assert first.bootstrap == f"127.0.0.1:{port}"
        assert first.start_seconds is not None and first.start_seconds < config.ready_timeout_s
        assert first.rss_mb is not None and first.rss_mb > 50

        again = broker.start(config)
        assert again.already_running and again.pid == first.pid

        status = broker.status(config)
        assert status.running and status.pid == first.pid
        cli = CliRunner().invoke(dev_cli_app, ["broker", "status", "--run-dir", str(config.run_dir)])
        assert cli.exit_code == 0 and f"pid {first.pid}" in cli.output
    finally:
        stopped = broker.stop(config)
    assert stopped is True
    assert broker.status(config).running is False
    assert not broker._pid_alive(first.pid)
    assert broker.stop(config) is False  # stopping a stopped broker is fine
    cli = CliRunner().invoke(dev_cli_app, ["broker", "status", "--run-dir", str(config.run_dir)])
    assert cli.exit_code == 3 and "stopped" in cli.output


def test_start_refuses_a_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (controller_port,) = broker.free_ports(1)
        config = broker.BrokerConfig(run_dir=tmp_path / "b", port=port, controller_port=controller_port)
        with pytest.raises(broker.BrokerError, match=f"port 127.0.0.1:{port} is already in use"):
            broker.start(config)
    assert broker.status(config).running is False


def test_a_jvm_that_dies_at_start_up_fails_with_the_log_tail(tmp_path: Path) -> None:
    port, controller_port = broker.free_ports(2)
    # A maximum heap below the fixed 256 MiB minimum makes the JVM refuse to start.
    config = broker.BrokerConfig(run_dir=tmp_path / "b", port=port, controller_port=controller_port, heap="64m")
    with pytest.raises(broker.BrokerError) as failure:
        broker.start(config)
    message = str(failure.value)
    assert "the broker JVM exited during start-up" in message
    assert "heap" in message.lower() and "stdout.log" in message
    assert broker.status(config).running is False


def test_status_of_a_never_started_run_dir_is_stopped(tmp_path: Path) -> None:
    status = broker.status(broker.BrokerConfig(run_dir=tmp_path / "nothing"))
    assert status.running is False and status.pid is None


def test_cluster_id_has_kafka_shape() -> None:
    ids = {broker.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(c) == 22 and not c.startswith("-") and "=" not in c for c in ids)
