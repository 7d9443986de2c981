"""A decision skipped by one instance and never applied by the owner that then stopped is applied by the
new owner, once (REAL broker, linker processes with the fake engine, the link-state changelog on).

Instance A owns the family's partition and never applies decisions (its decisions reader is off: the
owner that died before applying them); instance B (decisions on) owns the other partitions. A
reviewer accepts a candidate for a member of A's family: B's reader reads the decision and skips it
(not its member), and its `~decision-positions` records on the changelog show it has passed it. A stops;
B takes the partition over, restores its file from the changelog (which lacks the decision: its decision
positions are behind B's reader), re-reads the decisions it missed and applies the accept: the two
clerical events, once, and the member record with the chosen NIK. Then B stops and C, with an empty disk
and its decisions reader at the beginning, takes everything over: its restored file is AHEAD of its
reader, the accept it reads is a duplicate (no more events) and an undo of it applies.

Without the re-read (run once with `DecisionHandler.catch_up` reading nothing) the accept is never
applied: the wait for its events fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contracts.linkage_outputs import LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.partitioning import partition_for
from contracts.review_decisions import decision_id_of
from contracts.topics import REVIEW_DECISIONS, UPDATES
from services.kafka.io import read_topic
from services.kafka.record import KafkaRecord
from services.linker import changelog
from tests.integration.test_linker_changelog_decisions import cause, changelog_and_master
from tests.integration.test_linker_decisions import AHMAD, SITI, SITTI, _accept, _decision_topics
from tests.support.broker import RunningBroker
from tests.support.linker import member_payload, submission_payload
from tests.support.linker_service import start_worker
from tests.support.polling import poll_until, records_until
from tests.support.review_decisions import undo_of
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]
PARTITIONS = 4


def _family_on(partition: int, taken: set[str]) -> str:
    """A family key of a Kab. Tangerang district whose records go to `partition` (keys are partitioned
    by their district)."""
    for district in range(10, 1000):
        key = f"3603{district:03d}001000100001001"
        if key not in taken and partition_for(key.encode(), PARTITIONS) == partition:
            return key
    raise AssertionError(f"no family key on partition {partition}")


def _submission(family_key: str) -> bytes:
    members = [member_payload(1, "Ahmad Fauzi", AHMAD), member_payload(2, "Sity Aminah", SITI, sex=2, relationship=2)]
    return json.dumps(submission_payload(members, family_key=family_key)).encode()


def _owned_files(state: Path) -> set[int]:
    return {int(p.stem.removeprefix("links-p")) for p in (state / "links").glob("links-p*.duckdb")}


def test_a_decision_skipped_by_one_instance_and_never_applied_by_the_dead_owner_is_applied_by_the_new_owner(
    kafka_broker: RunningBroker, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag, names, topics = _decision_topics(bootstrap, "dg")
    log_topic, master = changelog_and_master(bootstrap, f"dg{tag}", tmp_path)
    env = {
        "REGSOSEK_LINKER_DECISIONS_ENABLED": "true",
        "REGSOSEK_LINKER_REVIEW_DECISIONS_TOPIC": names[REVIEW_DECISIONS],
        "REGSOSEK_LINKER_UPDATES_TOPIC": names[UPDATES],
        "REGSOSEK_LINKER_CHANGELOG_TOPIC": log_topic,
    }
    group = f"dg{tag}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        # A alone first (it owns every partition; a family linked shows it is running), then B joins.
        a = start_worker(
            bootstrap,
            topics,
            tmp_path / "a" / "state",
            master,
            group,
            extra_env={**env, "REGSOSEK_LINKER_DECISIONS_ENABLED": "false"},
        )
        workers.append(a)
        warm = _family_on(0, set())
        producer.send(topics.submissions, key=warm.encode(), value=_submission(warm), partition=0).get(timeout=30)
        records_until(bootstrap, topics.members, lambda r: len(r) >= 2, a)
        b = start_worker(bootstrap, topics, tmp_path / "b" / "state", master, group, extra_env=env)
        workers.append(b)

        # B opens the files of the partitions it is given (its decisions reader checks them when idle).
        def b_assigned() -> set[int] | None:
            got = _owned_files(tmp_path / "b" / "state")
            return got if len(got) == PARTITIONS // 2 else None

        b_owns = poll_until(b_assigned, 90, b.log_tail)
        p = min(set(range(PARTITIONS)) - b_owns)  # a partition A owns
        family = _family_on(p, {warm})
        key = f"{family}-02"
        # (on its catalogue partition: the test's producer would otherwise hash the whole key)
        producer.send(topics.submissions, key=family.encode(), value=_submission(family), partition=p).get(timeout=30)
        reviews = records_until(bootstrap, topics.review, lambda r: any(x.key == key.encode() for x in r), a)
        (task_record,) = [r for r in reviews if r.key == key.encode()]
        task = REVIEW_TASK_ADAPTER.validate_json(task_record.value or b"")
        decision = _accept(task.task_id).model_copy(
            update={"member_key": key, "decision_id": decision_id_of(task.task_id, 0)}
        )
        sent = producer.send(names[REVIEW_DECISIONS], key=key.encode(), value=decision.model_dump_json().encode())
        meta = sent.get(timeout=30)
        passed = (names[REVIEW_DECISIONS], meta.partition)

        def b_passed_it(records: list[KafkaRecord]) -> bool:
            for r in records:
                if r.key == changelog.DECISION_POSITIONS_KEY.encode() and r.partition in b_owns:
                    record = changelog.decode_any(r.value or b"", r.partition)
                    assert isinstance(record, changelog.DecisionPositionsRecord)
                    if record.decision_positions.get(passed, 0) > meta.offset:
                        return True
            return False

        records_until(bootstrap, log_topic, b_passed_it, b)
        assert [r for r in read_topic(bootstrap, names[UPDATES])] == []  # A never applies it, B skipped it
        assert a.stop() == 0, a.log_tail()

        # B takes A's partitions over: the file restored from the changelog is behind B's reader.
        events = records_until(
            bootstrap,
            names[UPDATES],
            lambda r: len([x for x in r if cause(x.value) == decision.decision_id]) >= 2,
            b,
        )
        members = [r for r in read_topic(bootstrap, topics.members) if r.key == key.encode()]
        assert LINKED_MEMBER_ADAPTER.validate_json(members[-1].value or b"").matched_nik == SITTI
        logged = [r for r in read_topic(bootstrap, log_topic) if r.key == family.encode()]
        state = changelog.decode(logged[-1].value or b"", logged[-1].partition)
        assert [(d.member_key, d.outcome.value, d.chosen_nik) for d in state.decisions] == [(key, "accept", SITTI)]
        assert b.stop() == 0, b.log_tail()
        assert [cause(r.value) for r in read_topic(bootstrap, names[UPDATES])] == [decision.decision_id] * 2
        assert len(events) == 2

        # A second takeover (an empty disk, its reader from the beginning) does not apply it again.
        c = start_worker(bootstrap, topics, tmp_path / "c" / "state", master, group, extra_env=env)
        workers.append(c)
        undo = undo_of(decision, task.task_id)
        producer.send(names[REVIEW_DECISIONS], key=key.encode(), value=undo.model_dump_json().encode()).get(timeout=30)
        records_until(bootstrap, names[UPDATES], lambda r: any(cause(x.value) == undo.decision_id for x in r), c)
        assert c.stop() == 0, c.log_tail()
        causes = [cause(r.value) for r in read_topic(bootstrap, names[UPDATES])]
        assert causes.count(decision.decision_id) == 2 and set(causes[2:]) == {undo.decision_id}
        assert [r for r in read_topic(bootstrap, topics.dlq)] == []  # the undo was not refused (undo_mismatch)
    finally:
        producer.close()
