"""Scale-out: two linker instances in one consumer group over the 4-partition submissions topic.

Submissions are partitioned by regency/district (the streamer's district partitioner). Both instances
must get partitions and link; then one is stopped mid-stream (SIGTERM: it leaves the group, the other
takes its partitions over in a rebalance). Afterwards every member has exactly one decision across
both instances (no key with two different records for one revision), equal to the in-process
reference, and nothing is missing.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer

from services.pipeline.outcome import wait_for_members
from services.pipeline.streaming import SubmissionStreamer
from tests.e2e.conftest import E2EWorld, Linkers, private_topics

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _partitions(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def test_two_instances_link_every_member_once_and_a_rebalance_loses_nothing(
    kafka_broker: object, e2e_world: E2EWorld, reference_members: dict[str, bytes], linkers: Linkers
) -> None:
    bootstrap: str = kafka_broker.bootstrap  # type: ignore[attr-defined]
    topics, group = private_topics(bootstrap)
    assert _partitions(bootstrap, topics.submissions) == 4
    subs = e2e_world.submissions
    first = linkers.start(bootstrap, topics, group, name="linker-a")
    second = linkers.start(bootstrap, topics, group, name="linker-b")
    streamer = SubmissionStreamer(
        bootstrap, topics.submissions, subs.records, subs.members, rate=120.0, by_district=True
    )
    streamer.start()

    # Both instances link (each owns some of the 4 partitions) ...
    assert first.wait_for_log("batch:", 120), first.log_tail()
    assert second.wait_for_log("batch:", 120), second.log_tail()
    time.sleep(2.0)
    mark = second.log_size()
    # ... then one leaves mid-stream and the other takes its partitions over.
    assert first.stop() == 0, first.log_tail()
    sent_at_stop = streamer.sent_members
    assert 0 < sent_at_stop < sum(subs.members)

    streamer.join(240)
    assert streamer.error is None and streamer.sent_records == len(subs.records)

    def died() -> str | None:
        return None if second.alive() else f"the linker exited ({second.returncode()}):\n{second.log_tail()}"

    expected = subs.expected_member_keys()
    outcome = wait_for_members(bootstrap, topics.members, expected, timeout_s=240, failure=died)
    assert outcome.conflicting_keys() == []
    assert outcome.latest() == reference_members
    assert second.wait_for_log("batch:", 5, since=mark)  # the survivor linked after the rebalance
    print(f"two instances; stop at {sent_at_stop} members sent; {outcome.duplicates()} re-delivered member "
          "records, all identical")  # fmt: skip
    assert second.stop() == 0, second.log_tail()
