"""Standby replicas against the REAL broker: two linker processes (the fake engine), each with its own
EMPTY state folder, the changelog on and `REGSOSEK_LINKER_STANDBY_PARTITIONS=all`, each owning two of the
four submissions partitions. One family is sent to each partition; each instance's standby replicas read
the other's two family records from the changelog within a deadline (its metric
`regsosek_linker_changelog_restored_records_total{by="standby"}`). Then instance A stops; B takes its
partitions over, and revision 2 of every family is linked by B. B's restores on opening A's files read
nothing (`by="owner"` stays 0: the replicas were current; without them it reads A's two records), and
B's outputs for A's families continue A's state (the revision-2 member records keep A's person ids).

Also the Kafka reader's chunks (`KafkaChangelogReader.chunks`) with a small chunk size on a real topic.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts.linkage_outputs import LINKED_MEMBER_ADAPTER
from contracts.topics import LINK_STATE_CHANGELOG, topic_spec
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.linker import changelog
from services.linker.changelog_kafka import KafkaChangelogReader
from services.linker.store import FamilyState
from tests.support.broker import RunningBroker
from tests.support.linker import MASTER, member_payload, nik_for, submission_payload
from tests.support.linker_service import Topics, committed, start_worker
from tests.support.polling import poll_until
from tools.broker import free_port
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

FAMILIES = [f"36030100010001000{p}1001" for p in range(4)]  # one per submissions partition (sent explicitly)


def _metric(port: int, name: str, **labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def _submission(family_key: str, revision: int) -> bytes:
    members = [member_payload(1, "Ahmad Fauzi", nik_for(11)), member_payload(2, "Rizky", None, relationship=3)]
    return json.dumps(submission_payload(members, family_key=family_key, revision=revision)).encode()


def _send_all(bootstrap: str, topic: str, revision: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for p, key in enumerate(FAMILIES):
            producer.send(topic, key=key.encode(), value=_submission(key, revision), partition=p).get(timeout=30)
    finally:
        producer.close()


def test_standby_replicas_keep_up_and_a_takeover_restores_only_the_tail(
    kafka_broker: RunningBroker, topics: Topics, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    log_topic = f"{topics.submissions}.changelog"
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=log_topic)]).differences
    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    group = f"standby-{uuid.uuid4().hex[:6]}"
    ports = {"a": free_port(), "b": free_port()}
    started: dict[str, LinkerProcess] = {}
    for name in ("a", "b"):
        env = {
            "REGSOSEK_LINKER_CHANGELOG_TOPIC": log_topic,
            "REGSOSEK_LINKER_STANDBY_PARTITIONS": "all",
            "REGSOSEK_LINKER_STANDBY_INTERVAL_SECONDS": "0.2",
            "REGSOSEK_LINKER_METRICS_PORT": str(ports[name]),
        }
        started[name] = start_worker(bootstrap, topics, tmp_path / name / "state", master_file, group, extra_env=env)
        workers.append(started[name])
    a, b = started["a"], started["b"]

    def owned(name: str) -> float | None:
        try:
            return _metric(ports[name], "regsosek_linker_assigned_partitions")
        except OSError:
            return None

    poll_until(lambda: owned("a") == 2 and owned("b") == 2, 120, lambda: a.log_tail() + b.log_tail())
    _send_all(bootstrap, topics.submissions, 1)
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 4, 90, b.log_tail)

    def standby_read(name: str) -> float | None:
        return _metric(ports[name], "regsosek_linker_changelog_restored_records_total", by="standby")

    # Each instance's replicas hold the other's two families (one record each), within a deadline.
    poll_until(lambda: standby_read("a") == 2 and standby_read("b") == 2, 60, b.log_tail)
    assert _metric(ports["b"], "regsosek_linker_changelog_restored_records_total", by="owner") == 0
    first = {r.key: r.value for r in read_topic(bootstrap, topics.members)}
    assert a.stop() == 0, a.log_tail()

    poll_until(lambda: owned("b") == 4, 90, b.log_tail)
    _send_all(bootstrap, topics.submissions, 2)
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 8, 90, b.log_tail)
    # B opened A's two files as their owner: the replicas were current, nothing was left to read.
    assert _metric(ports["b"], "regsosek_linker_changelog_restored_records_total", by="owner") == 0
    assert standby_read("b") == 2
    families = [json.loads(r.value or b"") for r in read_topic(bootstrap, topics.families)]
    assert sorted((f["family_key"], f["revision"]) for f in families) == sorted(
        (k, r) for k in FAMILIES for r in (1, 2)
    )
    latest = {r.key: r.value for r in read_topic(bootstrap, topics.members)}
    for key, value in first.items():  # every member keeps the person id its first owner gave it
        assert value is not None and latest[key] is not None
        before = LINKED_MEMBER_ADAPTER.validate_json(value)
        after = LINKED_MEMBER_ADAPTER.validate_json(latest[key] or b"")
        assert (after.revision, after.person_id) == (2, before.person_id)
    assert b.stop() == 0, b.log_tail()


def test_the_kafka_reader_reads_a_partition_in_chunks(kafka_broker: RunningBroker) -> None:
    bootstrap: str = kafka_broker.bootstrap
    topic = f"chunks-{uuid.uuid4().hex[:6]}.changelog"
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=topic)]).differences
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    values = []
    try:
        for revision in range(1, 8):
            state = FamilyState(revision, f"S-r{revision}", (1,), None, ())
            value = changelog.encode(changelog.FamilyRecord(FAMILIES[1], state, {}, ()))
            values.append(value)
            producer.send(topic, key=FAMILIES[1].encode(), value=value, partition=1).get(timeout=30)
        producer.send(topic, key=FAMILIES[2].encode(), value=None, partition=1).get(timeout=30)  # a tombstone
    finally:
        producer.close()
    reader = KafkaChangelogReader(bootstrap, topic)
    chunks = list(reader.chunks(1, 0, 3))
    assert [(len(v), end) for v, end in chunks] == [(3, 3), (3, 6), (1, 8)]
    assert [v for chunk, _ in chunks for v in chunk] == values
    assert list(reader.chunks(1, 5, 10)) == [(values[5:], 8)]
    assert list(reader.chunks(1, 8, 10)) == [] and list(reader.chunks(0, 0, 10)) == []
    assert reader.read(1, 0) == (values, 8)
    assert reader.partition_count() == 4
