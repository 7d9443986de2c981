"""Fixtures shared by several integration test modules (never imported from another test module)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from contracts.topics import LINKED_MEMBERS, SUBMISSIONS
from services.access.acl import SERVICE_PRINCIPALS
from services.kafka.topics import provision
from services.publisher.registry_file import save_registry
from tests.support.broker import RunningBroker
from tests.support.linker_service import Topics, provision_topics
from tests.support.processes import Watched
from tests.support.publisher import example_registry
from tests.support.secured_broker import SecuredBroker, acl_sync, producer_as
from tools import broker as broker_service
from tools.observability.promtool import find_binary
from tools.pipeline.linker_process import LinkerProcess


@pytest.fixture()
def topics(kafka_broker: RunningBroker) -> Topics:
    """Private copies of the linker's five pipeline topics on the session broker."""
    return provision_topics(kafka_broker.bootstrap)


@pytest.fixture()
def workers() -> Iterator[list[LinkerProcess]]:
    """Linker processes a test started (append them): stopped with SIGTERM at the end."""
    started: list[LinkerProcess] = []
    yield started
    for w in started:
        w.stop()


@pytest.fixture(scope="module")
def world_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generated world and a model trained on it, through the public CLI as an operator would:
    `regsosek generate` then `regsosek train`."""
    root = tmp_path_factory.mktemp("linker-world")
    cli = str(Path(sys.executable).parent / "regsosek")
    for args in (
        ["generate", "--out", str(root / "world"), "--persons", "2000", "--seed", "5"],
        [
            "train",
            "--source",
            "members",
            "--world",
            str(root / "world"),
            "--out",
            str(root / "models"),
            "--max-pairs",
            "200000",
            "--no-charts",
        ],
    ):
        done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    (model,) = (root / "models").iterdir()
    return root / "world", model


@pytest.fixture()
def processes() -> Iterator[list[Watched]]:
    """Service processes a test started (append them): stopped in reverse order at the end."""
    started: list[Watched] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    """Debian's prometheus; a missing binary fails in CI (never a silent skip) and skips elsewhere."""
    path = find_binary("prometheus")
    if path is None:
        message = "prometheus missing: install Debian's prometheus package (make install does)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


# The secured broker of the access-control tests (a separate broker per module that asks for it).
@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, dev_cli_app: typer.Typer) -> Iterator[SecuredBroker]:
    """A broker with the SASL listener started by `python -m tools broker start --secured`, the catalogue topics,
    and `regsosek acl sync` applied once."""
    port, controller_port, sasl_port = broker_service.free_ports(3)
    config = broker_service.BrokerConfig(
        run_dir=tmp_path_factory.mktemp("kafka-secured"),
        port=port,
        controller_port=controller_port,
        sasl_port=sasl_port,
    )
    run_dir = ["--run-dir", str(config.run_dir)]
    ports = ["--port", str(port), "--controller-port", str(controller_port), "--sasl-port", str(sasl_port)]
    started = CliRunner().invoke(dev_cli_app, ["broker", "start", "--secured", *run_dir, *ports])
    try:
        if started.exit_code != 0:
            pytest.fail(f"the secured Kafka broker could not start: {started.output}", pytrace=False)
        # The generated admin password, from the file the command names (it never prints the password).
        admin_password = broker_service.admin_password_file(config).read_text().strip()
        # The catalogue through the loopback PLAINTEXT (operator) listener.
        assert provision(config.bootstrap).ok
        work = tmp_path_factory.mktemp("acl")
        registry_path, credentials = work / "subscriptions.json", work / "credentials"
        credentials.mkdir()
        save_registry(registry_path, example_registry())
        passwords = {"admin": admin_password}
        for principal in (*SERVICE_PRINCIPALS, "kemensos", "kemenkes", "kemendikbud"):
            passwords[principal] = secrets.token_urlsafe(18)
            (credentials / f"{principal}.password").write_text(passwords[principal] + "\n")
        yield SecuredBroker(config, config.sasl_bootstrap, passwords, registry_path, credentials, started.output)
    finally:
        stopped = CliRunner().invoke(dev_cli_app, ["broker", "stop", *run_dir])
        assert stopped.exit_code == 0 and not broker_service.status(config).running, stopped.output


@pytest.fixture(scope="module")
def synced(secured: SecuredBroker, cli_app: typer.Typer) -> SecuredBroker:
    out = acl_sync(cli_app, secured, "--credentials-dir", str(secured.credentials_dir))
    assert "topic created   subscriber.kemensos.notifications.v1" in out
    assert "user set        kemenkes" in out and "user set        regsosek-publisher" in out
    assert "acl created     User:kemensos read topic:subscriber.kemensos.notifications.v1" in out
    # Seed one record in each topic the checks read, as the admin.
    with producer_as(secured, "admin") as producer:
        for topic in (
            SUBMISSIONS,
            LINKED_MEMBERS,
            "subscriber.kemensos.notifications.v1",
            "subscriber.kemenkes.notifications.v1",
        ):
            producer.send(topic, key=b"k", value=b"{}", partition=0).get(timeout=30)
    return secured
