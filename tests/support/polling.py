"""The one way tests wait: poll a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from services.kafka.io import read_topic
from services.kafka.record import KafkaRecord
from tools.pipeline.linker_process import LinkerProcess

T = TypeVar("T")


def poll_until(
    what: Callable[[], T | None], timeout_s: float, failure: str | Callable[[], str], *, interval_s: float = 0.2
) -> T:
    """Call `what` until it returns a truthy value and return that value.

    After `timeout_s` seconds fail with `failure` (a text, or a function giving one, e.g. a process's log
    tail). `what` may raise to stop early (a process it waits on has died): the error propagates.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            message = failure if isinstance(failure, str) else failure()
            raise AssertionError(f"not after {timeout_s:.0f} s: {message}")
        time.sleep(interval_s)


def records_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[KafkaRecord]], bool],
    linker: LinkerProcess,
    timeout_s: float = 90.0,
) -> list[KafkaRecord]:
    """Read `topic` until `done(records)`; fail at once if `linker` exits, with its log after `timeout_s`."""
    seen: list[KafkaRecord] = []

    def ready() -> tuple[list[KafkaRecord]] | None:  # a tuple: truthy even when `done` accepts no records
        seen[:] = read_topic(bootstrap, topic)
        if done(seen):
            return (list(seen),)
        linker.check_running()
        return None

    (records,) = poll_until(
        ready, timeout_s, lambda: f"{topic}: {len(seen)} records\n{linker.log_tail()}", interval_s=0.3
    )
    return records
