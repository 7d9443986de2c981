"""Clerical decisions applied by the linker process (`python -m services.linker`, fake engine) against the
REAL broker: a family is linked and one member lands in review; an accept decision on the decisions topic
changes the member's link (clerical band, the chosen NIK, its master person id) with `link_created` and
`merged` events caused by "clerical"; a broken decision is dead-lettered; re-sending the same submission
revision keeps the human decision (the same member record but for its event time, no new review task)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from contracts.dead_letter import DEAD_LETTER_ADAPTER
from contracts.linkage_outputs import LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome, ShownCandidate, decision_id_of
from contracts.topics import (
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    REVIEW,
    REVIEW_DECISIONS,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    UPDATES,
    topic_spec,
)
from integration.ids import PersonIds
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.linker.settings import DEV_PERSON_ID_KEY
from tests.support.broker import RunningBroker
from tests.support.linker import FAMILY_KEY, member_payload, nik_for, submission_payload
from tests.support.linker_service import Topics, start_worker
from tests.support.polling import records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker]

IDS = PersonIds(DEV_PERSON_ID_KEY.encode())
AHMAD, SITI, SITTI = nik_for(2), nik_for(3, female=True), nik_for(7, female=True)
KEY = f"{FAMILY_KEY}-02"


def _decision_topics(bootstrap: str, prefix: str) -> tuple[str, dict[str, str], Topics]:
    """A fresh tag; private copies (`<prefix><tag>.*`) of the linker's topics, updates and review decisions."""
    tag = uuid.uuid4().hex[:8]
    names = {
        SUBMISSIONS: f"{prefix}{tag}.submissions",
        SUBMISSIONS_DLQ: f"{prefix}{tag}.dlq",
        LINKED_MEMBERS: f"{prefix}{tag}.members",
        LINKED_FAMILIES: f"{prefix}{tag}.families",
        REVIEW: f"{prefix}{tag}.review",
        UPDATES: f"{prefix}{tag}.updates",
        REVIEW_DECISIONS: f"{prefix}{tag}.decisions",
    }
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(s), name=d) for s, d in names.items()]).differences
    topics = Topics(*(names[n] for n in (SUBMISSIONS, SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW)))
    return tag, names, topics


def _decisions_worker(
    bootstrap: str,
    names: dict[str, str],
    topics: Topics,
    state: Path,
    master: Path,
    group: str,
    workers: list[LinkerProcess],
) -> LinkerProcess:
    """A linker worker reading review decisions and publishing updates (stopped by the `workers` fixture)."""
    worker = start_worker(
        bootstrap,
        topics,
        state,
        master,
        group,
        extra_env={
            "REGSOSEK_LINKER_DECISIONS_ENABLED": "true",
            "REGSOSEK_LINKER_REVIEW_DECISIONS_TOPIC": names[REVIEW_DECISIONS],
            "REGSOSEK_LINKER_UPDATES_TOPIC": names[UPDATES],
        },
    )
    workers.append(worker)
    return worker


def _submission() -> bytes:
    members = [member_payload(1, "Ahmad Fauzi", AHMAD), member_payload(2, "Sity Aminah", SITI, sex=2, relationship=2)]
    return json.dumps(submission_payload(members)).encode()


def _accept(task_id: str) -> ReviewDecision:
    return ReviewDecision(
        decision_id=decision_id_of(task_id, 0),
        task_id=task_id,
        member_key=KEY,
        revision=1,
        sequence=0,
        outcome=ReviewOutcome.ACCEPT,
        chosen_record_id=SITTI,
        reviewer_id="rina",
        reviewer_role=ReviewerRole.REVIEWER,
        decided_at=dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC),
        shown=[
            ShownCandidate(rank=1, record_id=SITI, probability=0.6, match_weight=1.25),
            ShownCandidate(rank=2, record_id=SITTI, probability=0.3, match_weight=-1.2),
        ],
        model_version="fake-1",
    )


def _untimed(value: bytes | None) -> object:
    """A member record without its event time."""
    return LINKED_MEMBER_ADAPTER.validate_json(value or b"").model_copy(update={"event_time": None})


def test_an_accept_decision_changes_the_link_and_stays_when_the_revision_is_sent_again(
    kafka_broker: RunningBroker, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag, names, topics = _decision_topics(bootstrap, "d")
    master = tmp_path / "master.json"
    master.write_text(
        json.dumps(
            [
                {"nik": AHMAD, "full_name": "Ahmad Fauzi", "kk_number": "3603121705150003"},
                {"nik": SITI, "full_name": "Siti Aminah", "kk_number": "3603121705150003"},
                {"nik": SITTI, "full_name": "Sitti Aminah", "kk_number": "3603121705150009"},
            ]
        )
    )
    worker = _decisions_worker(bootstrap, names, topics, tmp_path / "state", master, f"g{tag}", workers)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topics.submissions, key=FAMILY_KEY.encode(), value=_submission()).get(timeout=30)
        (task_record,) = records_until(bootstrap, topics.review, lambda r: len(r) >= 1, worker)
        task = REVIEW_TASK_ADAPTER.validate_json(task_record.value or b"")
        assert (task.task_id, task.candidate_nik) == (f"{KEY}/r1", SITI)
        before = LINKED_MEMBER_ADAPTER.validate_json(
            [r for r in read_topic(bootstrap, topics.members) if r.key == KEY.encode()][-1].value or b""
        )
        decision = _accept(task.task_id)
        producer.send(names[REVIEW_DECISIONS], key=KEY.encode(), value=b"{broken").get(timeout=30)
        producer.send(names[REVIEW_DECISIONS], key=KEY.encode(), value=decision.model_dump_json().encode()).get(
            timeout=30
        )
        events = records_until(bootstrap, names[UPDATES], lambda r: len(r) >= 2, worker)
        updates = [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in events]
        assert [(u.event, u.cause.source.value, u.cause.change, u.cause.change_id) for u in updates] == [
            ("link_created", "review", "clerical", decision.decision_id),
            ("merged", "review", "clerical", decision.decision_id),
        ]
        assert (updates[1].old_person_id, updates[1].new_person_id) == (  # type: ignore[union-attr]
            before.person_id,
            IDS.for_master(SITTI),
        )
        members = [r for r in read_topic(bootstrap, topics.members) if r.key == KEY.encode()]
        member = LINKED_MEMBER_ADAPTER.validate_json(members[-1].value or b"")
        assert (member.decision.value, member.band.value, member.matched_nik, member.person_id, member.probability) == (
            "linked",
            "clerical_link",
            SITTI,
            IDS.for_master(SITTI),
            0.3,
        )
        assert member == updates[1].member
        (letter,) = records_until(bootstrap, topics.dlq, lambda r: len(r) >= 1, worker)
        dead = DEAD_LETTER_ADAPTER.validate_json(letter.value or b"")
        assert (dead.reason.value, dead.source_topic, dead.source_offset) == ("not_json", names[REVIEW_DECISIONS], 0)
        # The same revision again: the human decision holds (the same record but for its event time, which is
        # the submission's again: docs/contracts.md) and no review task is raised.
        decided = members[-1].value
        producer.send(topics.submissions, key=FAMILY_KEY.encode(), value=_submission()).get(timeout=30)
        again = records_until(
            bootstrap,
            topics.members,
            lambda r: len([x for x in r if x.key == KEY.encode()]) >= len(members) + 1,
            worker,
        )
        assert _untimed([r.value for r in again if r.key == KEY.encode()][-1]) == _untimed(decided)
        assert len(read_topic(bootstrap, topics.review)) == 1
        assert len(read_topic(bootstrap, names[UPDATES])) == 2
    finally:
        producer.close()
    assert worker.stop() == 0, worker.log_tail()


def test_a_world_slice_member_in_review_is_accepted_and_kept(
    kafka_broker: RunningBroker, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    """A generated world's first 30 families (fake engine over the world's master); one member's name
    is misspelt so that it lands in review; a reviewer accepts the engine's candidate."""
    import pyarrow.parquet as pq

    from contracts.decode import ContractViolation, decode_family_submission
    from linkage.records import family_key_string
    from synthetic import generate_world

    bootstrap: str = kafka_broker.bootstrap
    tag, names, topics = _decision_topics(bootstrap, "w")
    generate_world(tmp_path / "world", persons=400, seed=11)
    rows = pq.read_table(tmp_path / "world" / "population.parquet").to_pylist()
    master = tmp_path / "master.json"
    master.write_text(
        json.dumps(
            [
                {
                    "nik": r["nik"],
                    "full_name": r["full_name"],
                    "kk_number": r["kk_number"],
                    "deceased": r["status"] == "dead",
                }
                for r in rows
            ]
        )
    )
    known = {r["nik"] for r in rows}
    docs: list[tuple[str, dict[str, Any]]] = []
    target: tuple[str, str, str, int] | None = None
    for line in (tmp_path / "world" / "submissions.jsonl").read_text().splitlines():
        doc = json.loads(line)
        key = family_key_string(doc["family_key"])
        try:
            decode_family_submission(line.encode(), key=key.encode())
        except ContractViolation:
            continue  # the world's deliberately broken lines
        if target is None:
            member = next((m for m in doc["members"] if m.get("nik") in known), None)
            if member is not None:
                member["name"] = member["name"] + " Xq"  # same NIK, another name: the fake's review band
                target = (key, f"{key}-{member['serial']:02d}", member["nik"], len(docs))
        docs.append((key, doc))
        if len(docs) == 30:
            break
    assert target is not None
    family_key, member_key, nik, index = target
    worker = _decisions_worker(bootstrap, names, topics, tmp_path / "state", master, f"w{tag}", workers)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for f in [producer.send(topics.submissions, key=k.encode(), value=json.dumps(d).encode()) for k, d in docs]:
            f.get(timeout=30)
        n_members = sum(len(d["members"]) for _, d in docs)
        records_until(bootstrap, topics.members, lambda r: len({x.key for x in r}) >= n_members, worker)
        tasks = [REVIEW_TASK_ADAPTER.validate_json(r.value or b"") for r in read_topic(bootstrap, topics.review)]
        task = next(t for t in tasks if t.member_key == member_key)
        assert task.candidate_nik == nik
        decision = ReviewDecision(
            decision_id=decision_id_of(task.task_id, 0),
            task_id=task.task_id,
            member_key=member_key,
            revision=1,
            sequence=0,
            outcome=ReviewOutcome.ACCEPT,
            chosen_record_id=nik,
            reviewer_id="rina",
            reviewer_role=ReviewerRole.REVIEWER,
            decided_at=dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC),
            shown=[ShownCandidate(rank=1, record_id=nik, probability=task.probability, match_weight=task.match_weight)],
            model_version=task.model_version,
        )
        producer.send(names[REVIEW_DECISIONS], key=member_key.encode(), value=decision.model_dump_json().encode()).get(
            timeout=30
        )
        events = records_until(bootstrap, names[UPDATES], lambda r: len(r) >= 2, worker)
        assert [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"").event for r in events] == [
            "link_created",
            "merged",
        ]
        mine = [r for r in read_topic(bootstrap, topics.members) if r.key == member_key.encode()]
        member = LINKED_MEMBER_ADAPTER.validate_json(mine[-1].value or b"")
        assert (member.decision.value, member.band.value, member.matched_nik, member.person_id) == (
            "linked",
            "clerical_link",
            nik,
            IDS.for_master(nik),
        )
        # the same revision of that family again: the decision holds (all but the event time)
        producer.send(topics.submissions, key=family_key.encode(), value=json.dumps(docs[index][1]).encode()).get(
            timeout=30
        )
        again = records_until(
            bootstrap,
            topics.members,
            lambda r: len([x for x in r if x.key == member_key.encode()]) >= len(mine) + 1,
            worker,
        )
        assert _untimed([r.value for r in again if r.key == member_key.encode()][-1]) == _untimed(mine[-1].value)
        assert len([t for t in read_topic(bootstrap, topics.review) if t.key == member_key.encode()]) == 1
    finally:
        producer.close()
    assert worker.stop() == 0, worker.log_tail()
