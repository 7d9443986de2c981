"""Fixtures shared by several integration test modules (never imported from another test module)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import RunningBroker
from tests.support.linker_service import Topics, provision_topics
from tests.support.processes import Watched
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
