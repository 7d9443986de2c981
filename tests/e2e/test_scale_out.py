"""Scale-out: two linker instances in one consumer group over the 4-partition submissions topic.

The instances share the link-store folder (`REGSOSEK_LINKER_LINK_STORE_DIR`, one DuckDB file per
partition), each with its own state folder, as docs/linker.md "Scale-out" describes. Submissions are
partitioned by district (contracts.partitioning, as the gateway does). Both instances must get
partitions and link; then one is stopped mid-stream (SIGTERM: it leaves the group, the other takes its
partitions over in a rebalance). Afterwards every member has exactly one decision across both
instances (no key with two different records for one revision), equal to the in-process reference,
and nothing is missing. Finally the first revisions of the revised families are sent again, late:
the survivor, now owning every partition, must find the newer revisions in the moved state and
publish nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaConsumer

from tests.support.broker import RunningBroker
from tests.support.e2e import E2EWorld, Linkers, private_topics
from tests.support.linker_service import committed, written
from tests.support.polling import poll_until
from tools.pipeline.outcome import MemberOutcome, wait_for_members
from tools.pipeline.streaming import SubmissionStreamer

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _partitions(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def test_two_instances_link_every_member_once_and_a_rebalance_loses_nothing(
    kafka_broker: RunningBroker,
    e2e_world: E2EWorld,
    reference_members: dict[str, bytes],
    linkers: Linkers,
    tmp_path: Path,
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    topics, group = private_topics(bootstrap)
    assert _partitions(bootstrap, topics.submissions) == 4
    subs = e2e_world.submissions
    shared = tmp_path / "link-store"
    first = linkers.start(bootstrap, topics, group, name="linker-a", link_store_dir=shared)
    second = linkers.start(bootstrap, topics, group, name="linker-b", link_store_dir=shared)
    streamer = SubmissionStreamer(bootstrap, topics.submissions, subs.records, subs.members, rate=120.0)
    streamer.start()

    # Both instances link (each owns some of the 4 partitions) ...
    assert first.wait_for_log("batch:", 120), first.log_tail()
    assert second.wait_for_log("batch:", 120), second.log_tail()
    # Late in the stream, so that the first instance has stored second revisions on its partitions.
    poll_until(
        lambda: streamer.sent_members >= 0.7 * sum(subs.members) or not streamer.is_alive(),
        240,
        "the stream stalled",
        interval_s=0.2,
    )
    # ... then one leaves mid-stream and the other takes its partitions over.
    assert first.stop() == 0, first.log_tail()
    sent_at_stop = streamer.sent_members
    assert 0 < sent_at_stop < sum(subs.members)
    linked_at_stop = written(bootstrap, topics.members)  # records beyond these: the survivor's alone

    streamer.join(240)
    assert streamer.error is None and streamer.sent_records == len(subs.records)

    def died() -> str | None:
        return None if second.alive() else f"the linker exited ({second.returncode()}):\n{second.log_tail()}"

    expected = subs.expected_member_keys()
    # Read only once the group has committed every submission: the last records streamed are second
    # revisions with the same member keys, so "every key present" alone is true before they are linked.
    outcome = wait_for_members(
        bootstrap,
        topics.members,
        expected,
        timeout_s=240,
        failure=died,
        consumed_by=(group, topics.submissions),
    )
    assert outcome.conflicting_keys() == []
    assert outcome.latest() == reference_members
    assert written(bootstrap, topics.members) > linked_at_stop  # the survivor linked after the rebalance
    print(
        f"two instances; stop at {sent_at_stop} members sent; {outcome.duplicates()} re-delivered member "
        "records, all identical"
    )

    # Late first revisions of the revised families: stale for whichever instance stored revision 2.
    revised = {key for key, doc in subs.latest.items() if doc["revision"] > 1}
    late = [(k, v) for k, v in subs.records if k.decode() in revised and b'"revision":1,' in v]
    assert len(late) >= 10
    members_written = written(bootstrap, topics.members)
    replay = SubmissionStreamer(bootstrap, topics.submissions, late, [0] * len(late))
    replay.start()
    replay.join(60)
    assert replay.error is None
    # The survivor has processed them once its group committed every submission (offsets follow outputs).
    everything = len(subs.records) + len(late)
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == everything, 60, second.log_tail)
    # Nothing at all was published for them (counted by end offsets: the broker may compact the topic
    # meanwhile, tests/support/linker_service.written), and the latest record per member is unchanged.
    assert written(bootstrap, topics.members) == members_written
    assert MemberOutcome.read(bootstrap, topics.members).latest() == outcome.latest()
    assert second.stop() == 0, second.log_tail()
