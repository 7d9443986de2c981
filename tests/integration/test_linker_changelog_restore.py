"""A linker instance with an empty disk restores a partition's state from the link-state changelog.

Instance A links revisions 1 and 2 of a family, with the changelog on and its own link-store folder,
and stops; its whole folder is deleted. Instance B (same group, its own empty folder, no shared folder)
takes the partitions over: a late revision 1 must be stale (B restored revision 2 from the changelog),
a re-sent revision 2 must give byte-identical outputs to A's, and a revision 3 that brings back the
member revision 2 dropped must give that member the person id A minted for it. Without the changelog
B would start from nothing and publish revision 1 again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contracts.topics import LINK_STATE_CHANGELOG, topic_spec
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.linker import changelog
from tests.support.broker import RunningBroker
from tests.support.linker import FAM_A, MASTER, family_a, raw_json
from tests.support.linker_service import Topics, committed, start_worker
from tests.support.polling import poll_until, records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _produce(bootstrap: str, topic: str, docs: list[dict[str, object]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for doc in docs:
            producer.send(topic, key=FAM_A.encode(), value=raw_json(doc)).get(timeout=30)
    finally:
        producer.close()


def _family_records(bootstrap: str, topic: str) -> list[bytes]:
    return [r.value or b"" for r in read_topic(bootstrap, topic) if r.key == FAM_A.encode()]


def _revision(value: bytes) -> int:
    return int(json.loads(value)["revision"])


def _members(bootstrap: str, topic: str) -> list[tuple[str, bytes | None]]:
    return [((r.key or b"").decode(), r.value) for r in read_topic(bootstrap, topic)]


def test_an_instance_with_an_empty_disk_restores_the_state_from_the_changelog(
    kafka_broker: RunningBroker, topics: Topics, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    log_topic = f"{topics.submissions}.changelog"
    report = provision(bootstrap, [dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=log_topic)])
    assert not report.differences
    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    group = f"restore-{uuid.uuid4().hex[:6]}"
    env = {"REGSOSEK_LINKER_CHANGELOG_TOPIC": log_topic}

    _produce(bootstrap, topics.submissions, [family_a(1)])
    first = start_worker(bootstrap, topics, tmp_path / "a" / "state", master_file, group, extra_env=env)
    workers.append(first)
    records_until(bootstrap, topics.families, lambda rs: len(rs) >= 1, first)  # linked in a batch of its own
    _produce(bootstrap, topics.submissions, [family_a(2)])
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 2, 90, first.log_tail)
    assert first.stop() == 0, first.log_tail()
    families_by_a = _family_records(bootstrap, topics.families)
    assert families_by_a[-1:] and _revision(families_by_a[-1]) == 2
    members_by_a = _members(bootstrap, topics.members)
    child = f"{FAM_A}-03"
    child_by_a = json.loads(next(v for k, v in members_by_a if k == child and v is not None))
    assert (child, None) in members_by_a  # revision 2 dropped the child: a tombstone
    # The changelog holds the family's state after revision 2, the dropped child's id included.
    logged = read_topic(bootstrap, log_topic)
    assert [r.key for r in logged][-1] == FAM_A.encode()
    restored = changelog.decode(logged[-1].value or b"", logged[-1].partition)
    assert restored.state.revision == 2 and restored.state.serials == (1, 2)
    assert restored.minted[child] == child_by_a["person_id"]
    shutil.rmtree(tmp_path / "a")  # the disk is gone: nothing of A's link store is left

    second = start_worker(bootstrap, topics, tmp_path / "b" / "state", master_file, group, extra_env=env)
    workers.append(second)
    _produce(bootstrap, topics.submissions, [family_a(1)])  # late: stale for the restored revision 2
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 3, 90, second.log_tail)
    assert _family_records(bootstrap, topics.families) == families_by_a  # nothing published for it

    _produce(bootstrap, topics.submissions, [family_a(2)])  # re-sent: the same outputs, byte for byte
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 4, 90, second.log_tail)
    families = _family_records(bootstrap, topics.families)
    assert families == [*families_by_a, families_by_a[-1]]
    again = _members(bootstrap, topics.members)[len(members_by_a) :]
    latest_by_a = dict(members_by_a)
    assert again and all(latest_by_a[k] == v for k, v in again)

    back = {**family_a(1), "revision": 3, "submission_id": f"S-{FAM_A}-r3"}  # the child is back
    _produce(bootstrap, topics.submissions, [back])
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 5, 90, second.log_tail)
    assert _revision(_family_records(bootstrap, topics.families)[-1]) == 3
    child_now = [v for k, v in _members(bootstrap, topics.members) if k == child][-1]
    assert child_now is not None and json.loads(child_now)["person_id"] == child_by_a["person_id"]
    assert second.stop() == 0, second.log_tail()
