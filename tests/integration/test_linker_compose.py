"""The linker as docker-compose.yml runs it (metrics port, master updates AND review decisions on), on the
REAL broker.

The linker service's environment is read from docker-compose.yml; only what names the surroundings is
adapted (the test broker, private topic copies, a state folder, the world and model of the linker's
engine test, a free metrics port on 127.0.0.1, a test person-id key). The worker must start (it used to
exit with "the configured engine cannot take master updates"), link submissions, apply a master change
(`died` for a linked person -> `person_died` on the updates topic), and its /metrics must count both:
the submissions batches and the change record with the records they produced.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from contracts.decode import ContractViolation, decode_family_submission
from contracts.linkage_outputs import LinkedMember, MemberDecision
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.topics import (
    BPJS_CHANGES,
    DTKS_CHANGES,
    LINK_STATE_CHANGELOG,
    POPULATION_CHANGES,
    REVIEW_DECISIONS,
    UPDATES,
    topic_spec,
)
from linkage.records import family_key_string
from services.kafka.io import compacted_state, read_topic, values_by_key
from services.kafka.record import KafkaRecord
from services.kafka.topics import provision
from services.linker import changelog
from services.linker.settings import DEV_PERSON_ID_KEY
from tests.support.broker import RunningBroker
from tests.support.linker_service import Topics, start_worker, written
from tests.support.polling import records_until
from tests.support.updates import change_record
from tools.broker import free_port
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SENT_LINES = 40  # submissions of the world sent (a few micro-batches of the real engine)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def compose_linker_env() -> dict[str, str]:
    """The linker service's environment as docker-compose.yml sets it."""
    compose = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    return {k: str(v) for k, v in compose["services"]["linker"]["environment"].items()}


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_the_compose_configuration_links_applies_changes_and_counts_both(
    kafka_broker: RunningBroker,
    topics: Topics,
    workers: list[LinkerProcess],
    world_and_model: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    world, model = world_and_model
    env = compose_linker_env()
    # What this test is about: compose serves metrics AND applies master updates.
    assert env["REGSOSEK_LINKER_METRICS_PORT"] and env["REGSOSEK_LINKER_UPDATES_ENABLED"] == "true"
    assert env["REGSOSEK_LINKER_DECISIONS_ENABLED"] == "true"  # the review app's decisions are applied
    assert env["REGSOSEK_LINKER_MASTER_SHARDING"] == "true"  # its districts' rows, others via the global index
    tag = uuid.uuid4().hex[:8]
    changes = {
        src: f"c{tag}.{src}"
        for src in (POPULATION_CHANGES, DTKS_CHANGES, BPJS_CHANGES, UPDATES, REVIEW_DECISIONS, LINK_STATE_CHANGELOG)
    }
    specs = [dataclasses.replace(topic_spec(s), name=d) for s, d in changes.items()]
    assert not provision(bootstrap, specs).differences
    metrics_port = free_port()
    # compose mounts the key as a secret file (/run/secrets/...): the test's own file stands in for it
    key_file = tmp_path / "linker_person_id_key"
    key_file.write_text(DEV_PERSON_ID_KEY, encoding="utf-8")
    assert "REGSOSEK_LINKER_PERSON_ID_KEY_FILE" in env
    env.update(
        {
            "REGSOSEK_LINKER_WORLD_DIR": str(world),
            "REGSOSEK_LINKER_MODEL_PATH": str(model),
            "REGSOSEK_LINKER_PERSON_ID_KEY_FILE": str(key_file),
            "REGSOSEK_LINKER_METRICS_HOST": "127.0.0.1",
            "REGSOSEK_LINKER_METRICS_PORT": str(metrics_port),
            "REGSOSEK_LINKER_POPULATION_CHANGES_TOPIC": changes[POPULATION_CHANGES],
            "REGSOSEK_LINKER_DTKS_CHANGES_TOPIC": changes[DTKS_CHANGES],
            "REGSOSEK_LINKER_BPJS_CHANGES_TOPIC": changes[BPJS_CHANGES],
            "REGSOSEK_LINKER_UPDATES_TOPIC": changes[UPDATES],
            "REGSOSEK_LINKER_REVIEW_DECISIONS_TOPIC": changes[REVIEW_DECISIONS],
            "REGSOSEK_LINKER_CHANGELOG_TOPIC": changes[LINK_STATE_CHANGELOG],
        }
    )
    # Bootstrap, state folder, group and the pipeline topics: set by the Worker (over the compose values).

    lines = [ln.encode() for ln in (world / "submissions.jsonl").read_text().splitlines() if ln.strip()][:SENT_LINES]
    keys = [family_key_string(json.loads(ln)["family_key"]).encode() for ln in lines]
    latest: dict[str, tuple[int, list[tuple[str, bool]]]] = {}  # family -> (revision, [(member key, has NIK)])
    for line, key in zip(lines, keys, strict=True):
        try:
            sub = decode_family_submission(line, key=key)
        except ContractViolation:
            continue  # the world's deliberately invalid lines: dead-lettered (and counted as consumed)
        if sub.family_key.key not in latest or sub.revision >= latest[sub.family_key.key][0]:
            latest[sub.family_key.key] = (sub.revision, [(sub.member_key(m), bool(m.nik)) for m in sub.members])
    member_keys = {k for _, members in latest.values() for k, _ in members}
    without_nik = sum(1 for _, members in latest.values() for _, has_nik in members if not has_nik)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for future in [producer.send(topics.submissions, key=k, value=v) for k, v in zip(keys, lines, strict=True)]:
            future.get(timeout=30)
        worker = start_worker(bootstrap, topics, tmp_path / "state", None, f"compose-{tag}", extra_env=env)
        workers.append(worker)
        members = records_until(
            bootstrap, topics.members, lambda rs: set(compacted_state(rs)) == member_keys, worker, 240.0
        )

        # A master change: a person linked to a member dies.
        linked = {k: LinkedMember.model_validate_json(v) for k, v in compacted_state(members).items()}
        target = next(k for k, m in sorted(linked.items()) if m.decision is MemberDecision.LINKED and m.matched_nik)
        nik = linked[target].matched_nik
        (row,) = [r for r in pq.read_table(world / "population.parquet").to_pylist() if r["nik"] == nik]
        change = change_record("died", "chg-died", row, status="dead")
        producer.send(changes[POPULATION_CHANGES], key=b"chg-died", value=change).get(timeout=30)
    finally:
        producer.close()

    def died(records: list[KafkaRecord]) -> bool:
        events = values_by_key(records).get(target, [])
        return any(LINKAGE_UPDATE_ADAPTER.validate_json(v).event == "person_died" for v in events)

    updates = records_until(bootstrap, changes[UPDATES], died, worker, 120.0)
    linked_to_nik = {k for k, m in linked.items() if m.matched_nik == nik}
    assert set(values_by_key(updates)) == linked_to_nik  # every member of that person, and no other

    # /metrics: the submissions batches and the change batch, with everything they produced.
    deadline = time.monotonic() + 30
    while True:
        samples = scrape(metrics_port)
        produced_members = written(bootstrap, topics.members)
        counted = (
            sample(samples, "regsosek_messages_consumed_total", topic=changes[POPULATION_CHANGES]) == 1
            and sample(samples, "regsosek_messages_produced_total", topic=topics.members) == produced_members
        )
        if counted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sample(samples, "regsosek_messages_consumed_total", topic=topics.submissions) == len(lines)
    assert sample(samples, "regsosek_batch_size_records_sum") == len(lines)
    assert (sample(samples, "regsosek_batch_size_records_count") or 0) >= 1
    assert sample(samples, "regsosek_messages_consumed_total", topic=changes[POPULATION_CHANGES]) == 1
    assert sample(samples, "regsosek_messages_produced_total", topic=changes[UPDATES]) == len(updates)
    # The members topic holds the submissions' records plus the re-emitted records of the dead person's members.
    assert sample(samples, "regsosek_messages_produced_total", topic=topics.members) == produced_members
    assert sample(samples, "linkage_members_without_nik_total") == without_nik
    decisions = {
        source: sum(
            v
            for (name, labels), v in samples.items()
            if name == "linkage_decisions_total" and ("source", source) in labels
        )
        for source in ("dukcapil", "dtks", "bpjs")
    }
    # Each engine call counts its members once per source, the submissions' calls (a stale revision in a
    # batch is linked too) and the master change's re-link alike: the engine object reports, not a wrapper.
    assert decisions["dukcapil"] == decisions["dtks"] == decisions["bpjs"] >= len(member_keys) + len(linked_to_nik)
    assert (sample(samples, "linkage_engine_call_seconds_count") or 0) >= 2  # submissions, then the re-link
    # compose turns the link-state changelog on too: every linked family's state is on it.
    # The master change's re-link is on it too: after the families, the file's change positions.
    logged = {r.key.decode() for r in read_topic(bootstrap, changes[LINK_STATE_CHANGELOG]) if r.key is not None}
    assert logged == {*latest, changelog.POSITIONS_KEY}
    assert worker.stop() == 0, worker.log_tail()
