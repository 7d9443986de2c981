"""A linker that fails or hangs is gone within its shutdown deadline, non-zero, its DuckDB files free.

The real service (`run_worker`, real broker, real link store) with a test-only fake engine injected
(tests/integration/fault_linker.py): its second call fails (a fatal error in a batch) or never returns
(a deadlocked engine; SIGTERM then cannot finish the stop, and without the deadline Python waits for
that thread forever at exit). Afterwards a new process opens the link-store file, and a restarted
linker links the batch that was never committed: nothing is lost.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from contracts.topics import LINKED_MEMBERS, SUBMISSIONS
from services.shutdown import DEADLINE_EXIT_CODE
from tests.integration.linker_faults import (
    duckdb_opens,
    family,
    fault_run,
    members,
    produce,
    start_linker,
)
from tests.support.broker import RunningBroker
from tests.support.polling import poll_until, records_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEADLINE_S = 5.0
#: Beyond the deadline: the watchdog's exit itself and a loaded 2-core machine.
SLACK_S = 10.0


@pytest.mark.parametrize("fault", ["hang", "raise"])
def test_a_failed_or_hung_linker_exits_within_its_deadline_and_frees_its_link_store(
    kafka_broker: RunningBroker, tmp_path: Path, fault: str
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    names, master, group = fault_run(bootstrap, tmp_path, "shutdown")
    state, marker = tmp_path / "state", tmp_path / "engine-fault"
    env = {
        "FAULT_MODE": fault,
        "FAULT_CALL": "2",
        "FAULT_MARKER": str(marker),
        "REGSOSEK_LINKER_SHUTDOWN_DEADLINE_SECONDS": str(DEADLINE_S),
    }
    produce(bootstrap, names[SUBMISSIONS], [family(1)])
    linker = start_linker(bootstrap, names, state, master, group, module="tests.integration.fault_linker", env=env)
    try:
        records_until(bootstrap, names[LINKED_MEMBERS], members(1), linker)
        produce(bootstrap, names[SUBMISSIONS], [family(2)])
        poll_until(marker.exists, 90, lambda: f"the engine's second call\n{linker.log_tail()}")
        started = time.monotonic()
        if fault == "hang":
            linker.send_signal(signal.SIGTERM)  # what a supervisor does with a stuck worker
        code = linker.wait_exit(DEADLINE_S + SLACK_S)
        elapsed = time.monotonic() - started
    finally:
        linker.stop()
    assert code is not None, f"still running {DEADLINE_S + SLACK_S:.0f} s after the fault:\n{linker.log_tail()}"
    assert code != 0
    if fault == "hang":
        assert code == DEADLINE_EXIT_CODE  # the stop could not finish: the deadline ended it
        assert elapsed >= DEADLINE_S - 0.5
    files = sorted((state / "links").glob("links-p*.duckdb"))
    assert len(files) == 1
    opened = duckdb_opens(files[0])
    assert (opened.returncode, opened.stdout.strip()) == (0, "1"), opened.stderr  # family 1 only

    # The failed batch was never committed: a restarted linker (same group and state) links family 2.
    again = start_linker(bootstrap, names, state, master, group)
    try:
        records_until(bootstrap, names[LINKED_MEMBERS], members(2), again)
    finally:
        assert again.stop() == 0, again.log_tail()
