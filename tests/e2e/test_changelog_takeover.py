"""Scale-out without a shared disk: a killed instance's partitions are restored from the changelog.

Two linker instances in one consumer group, each with its OWN state and link-store folder (nothing
shared), write every batch's family states to the link-state changelog (docs/linker.md "Scale-out"). A
world with revised families is streamed (partitioned by district, as the gateway does); when 60% is
sent, one instance is killed with SIGKILL. The survivor takes its partitions over once the group session
times out, restores their link-store files from the changelog and re-processes what was not committed.
Afterwards every member's latest record equals the in-process one-instance reference (the same person
ids), no key has two different records for one revision, and the first revisions of the revised
families, sent again late, publish nothing: the survivor knows the later revisions the killed instance
had stored only in its own folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kafka.io import read_topic
from services.linker import changelog
from services.linker.changelog_kafka import KafkaChangelogReader
from tests.support.broker import RunningBroker
from tests.support.e2e import E2EWorld, Linkers, private_topics
from tests.support.linker_service import committed, written
from tests.support.polling import poll_until
from tools.pipeline.outcome import MemberOutcome, wait_for_members
from tools.pipeline.streaming import SubmissionStreamer

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_killed_instances_partitions_are_restored_from_the_changelog_by_the_survivor(
    kafka_broker: RunningBroker,
    e2e_world: E2EWorld,
    reference_members: dict[str, bytes],
    linkers: Linkers,
    tmp_path: Path,
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    topics, group = private_topics(bootstrap)
    assert topics.changelog.endswith("regsosek.linker.state.changelog.v1")
    subs = e2e_world.submissions
    # No link_store_dir: each instance keeps its files under its own state folder.
    first = linkers.start(bootstrap, topics, group, name="linker-a")
    second = linkers.start(bootstrap, topics, group, name="linker-b")
    streamer = SubmissionStreamer(bootstrap, topics.submissions, subs.records, subs.members, rate=120.0)
    streamer.start()
    assert first.wait_for_log("batch:", 120), first.log_tail()
    assert second.wait_for_log("batch:", 120), second.log_tail()
    poll_until(
        lambda: streamer.sent_members >= 0.6 * sum(subs.members) or not streamer.is_alive(),
        240,
        "the stream stalled",
        interval_s=0.2,
    )
    first.kill()  # SIGKILL: no commit, no release, its folder is as good as lost
    sent_at_kill = streamer.sent_members
    assert 0 < sent_at_kill < sum(subs.members)
    linked_at_kill = written(bootstrap, topics.members)
    streamer.join(240)
    assert streamer.error is None and streamer.sent_records == len(subs.records)

    def died() -> str | None:
        return None if second.alive() else f"the linker exited ({second.returncode()}):\n{second.log_tail()}"

    outcome = wait_for_members(
        bootstrap,
        topics.members,
        subs.expected_member_keys(),
        timeout_s=300,
        failure=died,
        consumed_by=(group, topics.submissions),
    )
    assert outcome.conflicting_keys() == []
    assert outcome.latest() == reference_members
    assert written(bootstrap, topics.members) > linked_at_kill
    # The survivor holds every partition's file now, each restored into its own folder.
    own = sorted(p.name for p in (tmp_path / "linker-b" / "state" / "links").glob("links-p*.duckdb"))
    assert own == [f"links-p{p}.duckdb" for p in range(4)]
    # The changelog has a state record for every family that was linked.
    reader = KafkaChangelogReader(bootstrap, topics.changelog)
    logged = [changelog.decode(v, p) for p in range(4) for v in reader.read(p, 0)[0]]
    assert {r.family_key for r in logged} == set(subs.latest)

    revised = {key for key, doc in subs.latest.items() if doc["revision"] > 1}
    late = [(k, v) for k, v in subs.records if k.decode() in revised and b'"revision":1,' in v]
    assert len(late) >= 10
    # Where the members topic ends now: a stale revision must add nothing after it. (Comparing whole
    # reads of the topic would be wrong: the log cleaner may compact older records in between.)
    ends: dict[int, int] = {}
    for r in read_topic(bootstrap, topics.members):
        ends[r.partition] = max(ends.get(r.partition, -1), r.offset)
    replay = SubmissionStreamer(bootstrap, topics.submissions, late, [0] * len(late))
    replay.start()
    replay.join(60)
    assert replay.error is None
    everything = len(subs.records) + len(late)
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == everything, 90, second.log_tail)
    after = read_topic(bootstrap, topics.members)
    assert [r for r in after if r.offset > ends.get(r.partition, -1)] == []  # stale: nothing published
    assert MemberOutcome.of(after).latest() == outcome.latest()
    print(f"killed at {sent_at_kill} members sent; {outcome.duplicates()} re-delivered member records, all identical")
    assert second.stop() == 0, second.log_tail()
