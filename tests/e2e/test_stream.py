"""End to end on the real broker: a generated world's submissions through a real linker process.

Every member of each family's latest revision must end with exactly one record on the members topic
(equal byte for byte to the in-process reference), and precision and recall against the truth file
must be at least those of the batch engine (Splink on DuckDB, same model) on the same members.
"""

from __future__ import annotations

import pytest

from tests.support.broker import RunningBroker
from tests.support.e2e import E2EWorld, Linkers, private_topics
from tools.pipeline.outcome import MemberOutcome, batch_scores, stream_scores, wait_for_members
from tools.pipeline.streaming import SubmissionStreamer

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_streamed_world_is_linked_once_per_member_and_as_well_as_batch(
    kafka_broker: RunningBroker, e2e_world: E2EWorld, reference_members: dict[str, bytes], linkers: Linkers
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    topics, group = private_topics(bootstrap)
    subs = e2e_world.submissions
    linker = linkers.start(bootstrap, topics, group)
    streamer = SubmissionStreamer(bootstrap, topics.submissions, subs.records, subs.members)
    streamer.start()
    streamer.join(120)
    assert streamer.error is None and streamer.sent_records == len(subs.records)

    expected = subs.expected_member_keys()
    assert len(expected) > 4000  # "several thousand members"

    def died() -> str | None:
        return None if linker.alive() else f"the linker exited ({linker.returncode()}):\n{linker.log_tail()}"

    outcome: MemberOutcome = wait_for_members(  # every submission committed: last revisions reuse member keys
        bootstrap, topics.members, expected, timeout_s=240, failure=died, consumed_by=(group, topics.submissions)
    )
    latest = outcome.latest()
    assert set(latest) == expected
    assert outcome.conflicting_keys() == []
    assert latest == reference_members

    stream = stream_scores(latest, subs, e2e_world.world)
    batch = batch_scores(e2e_world.world, e2e_world.model, subs)
    print(
        f"stream: precision {stream.auto.precision:.4f} recall {stream.auto.recall:.4f} ({stream.records}); "
        f"batch: precision {batch.auto.precision:.4f} recall {batch.auto.recall:.4f} ({batch.records})"
    )
    assert stream.records == batch.records == len(expected)
    assert stream.auto.precision >= batch.auto.precision
    assert stream.auto.recall >= batch.auto.recall
    assert linker.stop() == 0, linker.log_tail()
