"""The changelog fence (issue 12) on the real broker: a stale old owner's late write never wins.

Writer A owns changelog partition 0 and commits a family's state; writer B (another instance, the same
app id) takes partition 0 over: it starts the partition's transactional producer (a new epoch), restores,
and writes its own state of the family. A's next write (a zombie that overran the rebalance timeout)
comes back fenced, and a read_committed restore afterwards (a third owner) finds B's state, not A's.
Without the fence A's late record would be the partition's latest for the family.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.request
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from contracts.topics import LINK_STATE_CHANGELOG, topic_spec
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.linker import changelog
from services.linker.changelog import ChangelogWrite
from services.linker.changelog_kafka import KafkaChangelogReader, KafkaChangelogWriter
from services.linker.store import LinkStore
from tests.support.broker import RunningBroker
from tests.support.linker import FAM_A, MASTER, family_a, raw_json
from tests.support.linker_service import Topics, committed, start_worker
from tests.support.polling import poll_until
from tools.broker import free_port
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

FAMILY = b"3201010001000100010001"


def _topic(bootstrap: str) -> str:
    name = f"fence-{uuid.uuid4().hex[:8]}.changelog"
    report = provision(bootstrap, [dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=name, partitions=2)])
    assert not report.differences
    return name


def test_a_takeover_fences_the_old_owner_and_a_restore_reads_the_new_owners_state(
    kafka_broker: RunningBroker,
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = _topic(bootstrap)
    app_id = f"fence-{uuid.uuid4().hex[:6]}"
    reader = KafkaChangelogReader(bootstrap, topic, timeout_s=30)

    async def scenario() -> tuple[ChangelogWrite, ChangelogWrite, ChangelogWrite, ChangelogWrite, list[bytes]]:
        a = KafkaChangelogWriter(bootstrap, topic, app_id)
        b = KafkaChangelogWriter(bootstrap, topic, app_id)
        try:
            await a.acquire([0, 1])
            first = await a.write({0: [(FAMILY, b"A-1")], 1: [(b"other", b"A-other")]})
            await b.acquire([0])  # the takeover: a new epoch for partition 0, before B restores it
            restored, _ = await asyncio.to_thread(reader.read, 0, 0)
            by_b = await b.write({0: [(FAMILY, b"B-2")]})
            late = await a.write({0: [(FAMILY, b"A-late")], 1: [(b"other", b"A-other-2")]})
            again = await a.write({0: [(FAMILY, b"A-later")]})  # fenced stays fenced: no new epoch
            return first, by_b, late, again, restored
        finally:
            await a.close()
            await b.close()

    first, by_b, late, again, restored_by_b = asyncio.run(scenario())
    assert first == ChangelogWrite({0: 1, 1: 1})  # one record each; the commit marker follows it
    assert restored_by_b == [b"A-1"]  # B restored what A had committed
    assert by_b.fenced == frozenset() and set(by_b.after) == {0}
    # A, the zombie: partition 0 fenced, nothing of it committed; partition 1 is still A's own.
    assert late.fenced == frozenset({0})
    assert set(late.after) == {1}
    assert again == ChangelogWrite({}, frozenset({0}))
    # A third owner restoring partition 0 reads A's first state then B's: the latest is B's.
    values, _ = reader.read(0, 0)
    assert values == [b"A-1", b"B-2"]
    assert reader.read(1, 0)[0] == [b"A-other", b"A-other-2"]


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


def _produce(bootstrap: str, topic: str, doc: dict[str, object]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, key=FAM_A.encode(), value=raw_json(doc)).get(timeout=30)
    finally:
        producer.close()


def test_an_instance_whose_partition_was_taken_over_leaves_its_batch_to_the_new_owner(
    kafka_broker: RunningBroker, topics: Topics, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    """Instance A links revision 1 of a family; then another instance initialises the transactional
    producers of the changelog partitions (a takeover A has not noticed: no rebalance reached it). A's
    batch of revision 2 is fenced: its file keeps revision 1, its offset is not committed, the fenced
    counter is 1, the changelog holds A's revision-1 record only, and A keeps running. An instance B
    with an empty disk then links revision 2 from the uncommitted offset."""
    bootstrap: str = kafka_broker.bootstrap
    log_topic = f"{topics.submissions}.changelog"
    spec = dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=log_topic)
    assert not provision(bootstrap, [spec]).differences
    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    group = f"fence-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {"REGSOSEK_LINKER_CHANGELOG_TOPIC": log_topic, "REGSOSEK_LINKER_METRICS_PORT": str(port)}
    a = start_worker(bootstrap, topics, tmp_path / "a" / "state", master_file, group, extra_env=env)
    workers.append(a)
    _produce(bootstrap, topics.submissions, family_a(1))
    poll_until(lambda: _committed(bootstrap, group, topics.submissions) == 1, 90, a.log_tail)
    [source] = read_topic(bootstrap, topics.submissions)
    p = source.partition
    reader = KafkaChangelogReader(bootstrap, log_topic, timeout_s=30)
    [rev1] = reader.read(p, 0)[0]
    assert changelog.decode(rev1, p).state.revision == 1
    assert _metric(port, "regsosek_linker_changelog_fenced_total") == 0

    async def take_over() -> None:  # what a new owner does on its assignment, before it restores
        other = KafkaChangelogWriter(bootstrap, log_topic, group)
        try:
            await other.acquire(range(spec.partitions))
        finally:
            await other.close()

    asyncio.run(take_over())
    _produce(bootstrap, topics.submissions, family_a(2))
    poll_until(lambda: _metric(port, "regsosek_linker_changelog_fenced_total") == 1, 60, a.log_tail)
    assert a.alive(), a.log_tail()
    assert reader.read(p, 0)[0] == [rev1]  # nothing of the fenced batch was committed
    assert a.stop() == 0, a.log_tail()  # a graceful stop commits every acked offset: none of revision 2
    assert committed(bootstrap, group, topics.submissions) == 1
    file = LinkStore(tmp_path / "a" / "state" / "links" / f"links-p{p}.duckdb")
    try:
        assert file.families([FAM_A])[FAM_A].revision == 1
        assert file.changelog_position(p) == 1  # the offset after the revision-1 record (its commit marker)
    finally:
        file.close()

    # The new owner (an empty disk) re-processes the batch A left: revision 2 is linked once, on top of A's 1.
    b = start_worker(bootstrap, topics, tmp_path / "b" / "state", master_file, group, extra_env=env)
    workers.append(b)
    poll_until(lambda: _committed(bootstrap, group, topics.submissions) == 2, 90, b.log_tail)
    values = reader.read(p, 0)[0]
    assert [changelog.decode(v, p).state.revision for v in values] == [1, 2]
    assert b.stop() == 0, b.log_tail()


def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    try:
        return committed(bootstrap, group, topic)
    except KafkaError:  # the group's coordinator is not up yet (a fresh broker)
        return None
