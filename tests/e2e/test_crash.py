"""Crash safety: the linker is killed with SIGKILL at random points while submissions stream in.

A seeded RNG picks each kill point: after the (re)started linker has finished at least one batch, a
random 0.1-1.5 s later (mid-batch, mid-produce or mid-commit, wherever it lands). The linker is
restarted at once each time. Afterwards every member has its record (equal to the in-process
reference), and no key carries two different records for one revision: re-deliveries of the
uncommitted batches wrote identical bytes.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.support.broker import RunningBroker
from tests.support.e2e import E2EWorld, Linkers, private_topics
from tools.pipeline.outcome import wait_for_members
from tools.pipeline.streaming import SubmissionStreamer

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KILLS = 6
SEED = 20261128


def test_kill_9_at_random_points_loses_nothing_and_never_decides_twice(
    kafka_broker: RunningBroker, e2e_world: E2EWorld, reference_members: dict[str, bytes], linkers: Linkers
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    rng = random.Random(SEED)
    topics, group = private_topics(bootstrap)
    subs = e2e_world.submissions
    linker = linkers.start(bootstrap, topics, group)
    # ~5,000 members over ~50 s: the stream is still running while the linker is killed and restarted.
    streamer = SubmissionStreamer(bootstrap, topics.submissions, subs.records, subs.members, rate=100.0)
    streamer.start()

    kills: list[tuple[int, float]] = []  # (members sent at the kill, seconds after the batch)
    for _ in range(KILLS):
        since = linker.log_size()
        assert linker.wait_for_log("batch:", 120, since=since), f"no batch after a (re)start:\n{linker.log_tail()}"
        pause = rng.uniform(0.1, 1.5)
        time.sleep(pause)
        linker.kill()
        kills.append((streamer.sent_members, pause))
        linker.restart()
    streamer.join(180)
    assert streamer.error is None and streamer.sent_records == len(subs.records)
    assert len(kills) >= 5 and linker.starts == KILLS + 1
    # At least half of the kills fell while submissions were still being produced.
    assert sum(sent < sum(subs.members) for sent, _ in kills) >= KILLS // 2, kills

    def died() -> str | None:
        return None if linker.alive() else f"the linker exited ({linker.returncode()}):\n{linker.log_tail()}"

    expected = subs.expected_member_keys()
    outcome = wait_for_members(  # every submission committed: last revisions reuse member keys
        bootstrap, topics.members, expected, timeout_s=240, failure=died, consumed_by=(group, topics.submissions)
    )
    assert outcome.conflicting_keys() == []
    assert outcome.latest() == reference_members
    print(
        f"{len(kills)} kills at members sent {[s for s, _ in kills]}; "
        f"{outcome.duplicates()} re-delivered member records, all identical"
    )
    # The last restart may still be loading its engine when every member is already out (the killed run
    # linked and committed it all): a SIGTERM then meets Python's default disposition (exit -15), which
    # tests nothing. Stop the worker once it runs.
    assert linker.wait_for_log("Worker ready", 120), linker.log_tail()
    assert linker.stop() == 0, linker.log_tail()
