"""The linker service on a REAL full and a REAL read-only link-store volume, against the real broker.

Each fault stops the linker with a non-zero status within its shutdown deadline, with one log line
naming the cause (what an operator reads: there is no other output of a stopped process), and without
committing the offsets of the failed batch: once the volume is fixed, a restarted linker re-processes
the batch and its link-store file then holds it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contracts.topics import SUBMISSIONS
from tests.integration.linker_faults import (
    duckdb_opens,
    family,
    fault_run,
    link_first_family,
    produce,
    start_linker,
)
from tests.integration.mounts import fill, remount, require_mount_privilege, tmpfs
from tests.support.broker import RunningBroker
from tests.support.linker_service import committed
from tests.support.polling import poll_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEADLINE_S = 10.0


def _stopped_by_fault(linker: LinkerProcess, timeout_s: float) -> int:
    code = linker.wait_exit(timeout_s)
    assert code is not None, f"still running after {timeout_s:.0f} s:\n{linker.log_tail()}"
    linker.stop()
    return code


def _linker(
    bootstrap: str, names: dict[str, str], tmp_path: Path, master: Path, group: str, volume: Path
) -> LinkerProcess:
    """The linker with its link store on `volume` and the test's shutdown deadline."""
    env = {"REGSOSEK_LINKER_LINK_STORE_DIR": str(volume), "REGSOSEK_LINKER_SHUTDOWN_DEADLINE_SECONDS": str(DEADLINE_S)}
    return start_linker(bootstrap, names, tmp_path / "state", master, group, env=env)


def _count(volume: Path) -> int:
    total = 0
    for path in sorted(volume.glob("links-p*.duckdb")):
        opened = duckdb_opens(path)
        assert opened.returncode == 0, opened.stderr
        total += int(opened.stdout)
    return total


def test_a_full_link_store_volume_stops_the_linker_as_disk_full_and_loses_nothing(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    require_mount_privilege()
    bootstrap: str = kafka_broker.bootstrap
    names, master, group = fault_run(bootstrap, tmp_path, "full")
    with tmpfs(tmp_path / "links", "8m") as volume:
        produce(bootstrap, names[SUBMISSIONS], [family(1)])
        linker = _linker(bootstrap, names, tmp_path, master, group, volume)
        try:
            link_first_family(bootstrap, names, group, linker)
            filler = fill(volume)
            produce(bootstrap, names[SUBMISSIONS], [family(2)])
            code = _stopped_by_fault(linker, 60 + DEADLINE_S)
        finally:
            linker.stop()
        assert code != 0
        assert committed(bootstrap, group, names[SUBMISSIONS]) == 1  # the failed batch was not committed
        log = linker.log_text()
        assert "linker batch failed" in log and "disk full" in log and str(volume) in log, log
        assert "no transaction is active" not in log
        filler.unlink()
        assert _count(volume) == 1  # family 2 was never stored

        again = _linker(bootstrap, names, tmp_path, master, group, volume)
        try:
            poll_until(lambda: committed(bootstrap, group, names[SUBMISSIONS]) == 2, 90, again.log_tail)
        finally:
            assert again.stop() == 0, again.log_tail()
        assert _count(volume) == 2  # the uncommitted batch was processed again and stored


def test_a_read_only_link_store_volume_stops_the_linker_as_read_only_at_once(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    require_mount_privilege()
    bootstrap: str = kafka_broker.bootstrap
    names, master, group = fault_run(bootstrap, tmp_path, "ro")
    with tmpfs(tmp_path / "links", "8m") as volume:
        produce(bootstrap, names[SUBMISSIONS], [family(1)])
        first = _linker(bootstrap, names, tmp_path, master, group, volume)
        try:
            link_first_family(bootstrap, names, group, first)
        finally:
            assert first.stop() == 0, first.log_tail()
        remount(volume, "ro")
        produce(bootstrap, names[SUBMISSIONS], [family(2)])
        started = time.monotonic()
        linker = _linker(bootstrap, names, tmp_path, master, group, volume)
        try:
            # Start-up, one batch, the stop: well inside the 60 s the open used to retry a read-only file.
            code = _stopped_by_fault(linker, 45)
        finally:
            linker.stop()
        assert time.monotonic() - started < 45
        assert code != 0
        log = linker.log_text()
        assert "linker batch failed" in log and "read-only" in log and "another linker" not in log, log
        assert committed(bootstrap, group, names[SUBMISSIONS]) == 1
        remount(volume, "rw")
        assert _count(volume) == 1
