"""A clerical decision survives a takeover by an instance with an empty disk: it is on the link-state
changelog, not only in the deciding instance's file (REAL broker, the linker process with the fake engine).

Instance A (decisions and the changelog on, its own state folder) links a family whose member lands in
review; a reviewer accepts another candidate; A applies it (events `link_created`, `merged`) and stops;
its whole folder is deleted. Instance B (same group, its own EMPTY folder, no shared folder) takes the
partitions over and restores them from the changelog. Its own decisions reader starts from the
beginning of the decisions topic: the decision it finds must be a duplicate (B's restored file has it),
so no event is published again; and the same revision re-sent must keep the human decision (the same
member record as A's decided one but for its event time) and raise no review task. Without the
decision on the changelog, B would re-apply it (two more events) and the re-sent revision would put the
member back in review.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contracts.linkage_outputs import LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.topics import LINK_STATE_CHANGELOG, REVIEW_DECISIONS, UPDATES, topic_spec
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.linker import changelog
from tests.integration.test_linker_decisions import KEY, SITTI, _accept, _decision_topics, _submission, _untimed
from tests.support.broker import RunningBroker
from tests.support.linker import FAMILY_KEY, nik_for
from tests.support.linker_service import committed, start_worker, written
from tests.support.polling import poll_until, records_until
from tests.support.review_decisions import undo_of
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_decision_is_restored_from_the_changelog_by_an_instance_with_an_empty_disk(
    kafka_broker: RunningBroker, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag, names, topics = _decision_topics(bootstrap, "cd")
    log_topic, master = changelog_and_master(bootstrap, f"cd{tag}", tmp_path)
    env = {
        "REGSOSEK_LINKER_DECISIONS_ENABLED": "true",
        "REGSOSEK_LINKER_REVIEW_DECISIONS_TOPIC": names[REVIEW_DECISIONS],
        "REGSOSEK_LINKER_UPDATES_TOPIC": names[UPDATES],
        "REGSOSEK_LINKER_CHANGELOG_TOPIC": log_topic,
    }
    group = f"cd{tag}"
    first = start_worker(bootstrap, topics, tmp_path / "a" / "state", master, group, extra_env=env)
    workers.append(first)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topics.submissions, key=FAMILY_KEY.encode(), value=_submission()).get(timeout=30)
        (task_record,) = records_until(bootstrap, topics.review, lambda r: len(r) >= 1, first)
        task = REVIEW_TASK_ADAPTER.validate_json(task_record.value or b"")
        decision = _accept(task.task_id)
        producer.send(names[REVIEW_DECISIONS], key=KEY.encode(), value=decision.model_dump_json().encode()).get(
            timeout=30
        )
        records_until(bootstrap, names[UPDATES], lambda r: len(r) >= 2, first)
        # The decided family's state is on the changelog (after the submission's record), with the decision.
        # (each decision batch also sends the files' `~decision-positions` records: the family's own only)
        logged = records_until(
            bootstrap, log_topic, lambda r: len([x for x in r if x.key == FAMILY_KEY.encode()]) >= 2, first
        )
        logged = [r for r in logged if r.key == FAMILY_KEY.encode()]
        state = changelog.decode(logged[-1].value or b"", logged[-1].partition)
        assert [(d.member_key, d.outcome.value, d.chosen_nik) for d in state.decisions] == [(KEY, "accept", SITTI)]
        assert next(m for m in state.members if m.member_key == KEY).link_nik == SITTI
        assert first.stop() == 0, first.log_tail()
        decided = [r for r in read_topic(bootstrap, topics.members) if r.key == KEY.encode()]
        shutil.rmtree(tmp_path / "a")  # the disk is gone: nothing of A's link store or positions is left

        second = start_worker(bootstrap, topics, tmp_path / "b" / "state", master, group, extra_env=env)
        workers.append(second)
        producer.send(topics.submissions, key=FAMILY_KEY.encode(), value=_submission()).get(timeout=30)
        poll_until(lambda: committed(bootstrap, group, topics.submissions) == 2, 90, second.log_tail)
        members = records_until(
            bootstrap,
            topics.members,
            lambda r: len([x for x in r if x.key == KEY.encode()]) >= len(decided) + 1,
            second,
        )
        member = [r.value for r in members if r.key == KEY.encode()][-1]
        assert _untimed(member) == _untimed(decided[-1].value)
        assert LINKED_MEMBER_ADAPTER.validate_json(member or b"").matched_nik == SITTI
        # No review task raised again: the topic's end stays at its one task. (Counted by end offset: the
        # task carries the submission's 2022 event time, so the broker's time retention may delete it.)
        assert written(bootstrap, topics.review) == 1
        # The reviewer undoes the accept: B must know the accept (its restored file's decision log) for the
        # undo to apply; B's decisions reader, starting from the beginning, finds the accept first and must
        # drop it as a duplicate, not apply it again.
        undo = undo_of(decision, task.task_id)
        producer.send(names[REVIEW_DECISIONS], key=KEY.encode(), value=undo.model_dump_json().encode()).get(timeout=30)
        records_until(bootstrap, names[UPDATES], lambda r: any(cause(x.value) == undo.decision_id for x in r), second)
        assert second.stop() == 0, second.log_tail()
        causes = [cause(r.value) for r in read_topic(bootstrap, names[UPDATES])]
        assert causes.count(decision.decision_id) == 2  # A's link_created and merged, nothing from B
        assert causes[:2] == [decision.decision_id] * 2 and set(causes[2:]) == {undo.decision_id}
        assert written(bootstrap, topics.dlq) == 0  # the undo was not refused (undo_mismatch)
    finally:
        producer.close()


def changelog_and_master(bootstrap: str, prefix: str, tmp_path: Path) -> tuple[str, Path]:
    """A private changelog topic `<prefix>.changelog`, and a master file of the three people the
    decision tests link (Ahmad and Siti of one KK, Sitti of another: the reviewer's choice)."""
    log_topic = f"{prefix}.changelog"
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=log_topic)]).differences
    master = tmp_path / "master.json"
    people = [
        (nik_for(2), "Ahmad Fauzi", "3603121705150003"),
        (nik_for(3, female=True), "Siti Aminah", "3603121705150003"),
        (SITTI, "Sitti Aminah", "3603121705150009"),
    ]
    master.write_text(json.dumps([{"nik": n, "full_name": f, "kk_number": k} for n, f, k in people]))
    return log_topic, master


def cause(value: bytes | None) -> str:
    """The change (here: decision) id an update event names as its cause."""
    return LINKAGE_UPDATE_ADAPTER.validate_json(value or b"").cause.change_id
