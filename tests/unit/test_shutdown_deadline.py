"""The shutdown deadline ends the process once armed, only once, never before its time."""

from __future__ import annotations

import threading
import time

import pytest

from services.shutdown import DEADLINE_EXIT_CODE, ShutdownDeadline


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_an_armed_deadline_exits_with_its_code_after_its_time() -> None:
    exits = Exits()
    deadline = ShutdownDeadline(0.3, exit_process=exits)
    started = time.monotonic()
    deadline.arm("a fatal RuntimeError")
    deadline.arm("a stop request")  # the second call does not restart the countdown
    assert exits.called.wait(5.0)
    assert time.monotonic() - started >= 0.3
    assert exits.codes == [DEADLINE_EXIT_CODE]
    assert deadline.fired.is_set()


def test_an_unarmed_deadline_never_exits() -> None:
    exits = Exits()
    deadline = ShutdownDeadline(0.05, exit_process=exits)
    assert not exits.called.wait(0.3)
    assert not deadline.armed


def test_a_cancelled_deadline_does_not_exit() -> None:
    exits = Exits()
    deadline = ShutdownDeadline(0.2, exit_process=exits)
    deadline.arm("a stop request")
    deadline.cancel()
    assert not exits.called.wait(0.5)
    assert exits.codes == []


def test_the_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ShutdownDeadline(0)
