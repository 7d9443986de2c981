"""A shutdown deadline: once a service starts stopping (a fatal error or SIGTERM), it is gone soon after.

A crashed linker was seen to hang for minutes in faust's stop_and_shutdown: the event loop waited on
a thread that never returned, SIGTERM is handled on that same loop, and at interpreter exit Python
joins its worker threads. The process kept its DuckDB files locked, so no supervisor could restart it.

`ShutdownDeadline.arm()` starts a daemon thread that does not depend on the event loop or the main
thread: if the process is still alive `seconds` later it logs one line and calls `os._exit` with
`DEADLINE_EXIT_CODE`. The operating system then releases every file lock (DuckDB's included); what
was committed is durable (DuckDB's WAL), and no offset of an unfinished batch was committed, so the
next process re-processes it. A process that finishes its own stop in time exits with its own code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("regsosek.shutdown")

#: Exit status when the deadline ended the process (EX_SOFTWARE): never 0, the stop was not clean.
DEADLINE_EXIT_CODE = 70
#: The default deadline of the services' settings.
DEFAULT_SHUTDOWN_DEADLINE_S = 30.0


class ShutdownDeadline:
    """Ends the process `seconds` after the first `arm()`, unless it exits before."""

    def __init__(self, seconds: float, *, exit_process: Callable[[int], object] = os._exit) -> None:
        if seconds <= 0:
            raise ValueError("the shutdown deadline must be positive")
        self.seconds = seconds
        self._exit = exit_process
        self._lock = threading.Lock()
        self._armed: threading.Thread | None = None
        self._cancelled = threading.Event()
        self.fired = threading.Event()

    @property
    def armed(self) -> bool:
        """True once `arm()` was called (it stays armed; `cancel()` only stops a test's deadline)."""
        return self._armed is not None

    def arm(self, why: str) -> None:
        """Start the countdown (only the first call counts). `why` is logged: no personal values."""
        with self._lock:
            if self._armed is not None:
                return
            log.info("stopping (%s): the process exits within %.0f s", why, self.seconds)
            self._armed = threading.Thread(target=self._run, args=(why,), name="shutdown-deadline", daemon=True)
            self._armed.start()

    def cancel(self) -> None:
        """Stop the countdown (tests; a service never takes its deadline back)."""
        self._cancelled.set()

    def _run(self, why: str) -> None:
        if self._cancelled.wait(self.seconds):
            return
        self.fired.set()
        log.critical(
            "shutdown after %s did not finish within %.0f s; exiting with status %d",
            why,
            self.seconds,
            DEADLINE_EXIT_CODE,
        )
        # Exiting anyway: a broken log handler or stream must not keep the process alive.
        for stream in [*logging.getLogger().handlers, sys.stderr]:
            with contextlib.suppress(Exception):
                stream.flush()
        self._exit(DEADLINE_EXIT_CODE)
