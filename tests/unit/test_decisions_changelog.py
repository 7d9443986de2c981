"""Clerical decisions on the link-state changelog, without a broker: a decision batch sends the decided
family's new state (the member's new link and its decision log) after the decision's outputs are
acknowledged and before the file is written; a file restored from those records has the decision (the
same sticky decision, member states and decision log), and a later submissions batch's record of the
family keeps it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from contracts.decode import decode_family_submission
from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome, decision_id_of
from integration.ids import PersonIds
from services.kafka.record import KafkaRecord
from services.linker import changelog
from services.linker.changelog import ChangelogSink, SendWriter
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.linker.updates.applier import UpdateTopics
from services.linker.updates.decision_wiring import DecisionHandler, DecisionPositions
from tests.support.acking import AckingProducer, LogReader
from tests.support.linker import FakeMasterPerson, FakeMemberLinker, member_payload, nik_for, submission_payload
from tests.support.linking import link_batch

IDS = PersonIds(b"k")
KK = "3603121705150003"
FAM = "3603010001000100001001"
AHMAD, RIZKY = nik_for(11), nik_for(13, yy=15)
KEY = f"{FAM}-02"


def _submission() -> Any:
    members = [member_payload(1, "Ahmad Fauzi", AHMAD), member_payload(2, "Rizky", RIZKY, birth=(15, 5, 2015))]
    return decode_family_submission(json.dumps(submission_payload(members, family_key=FAM)).encode(), key=FAM.encode())


def _new_person() -> KafkaRecord:
    task = f"{KEY}/r1"
    decision = ReviewDecision(
        decision_id=decision_id_of(task, 0),
        task_id=task,
        member_key=KEY,
        revision=1,
        sequence=0,
        outcome=ReviewOutcome.NEW_PERSON,
        reviewer_id="rina",
        reviewer_role=ReviewerRole.REVIEWER,
        decided_at=dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC),
        shown=[],
        model_version="fake-1",
    )
    return KafkaRecord("dec", 0, 0, KEY.encode(), decision.model_dump_json().encode(), 1_700_000_000_000)


def test_a_decision_goes_on_the_changelog_before_the_file_and_a_restored_file_keeps_it(tmp_path: Path) -> None:
    # Rizky's NIK is in the master under another name: the fake puts him in review.
    fake = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK), FakeMasterPerson(RIZKY, "Budi", KK)])
    pipeline = SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r"))
    store = LinkStore(tmp_path / "links-p0.duckdb")
    linked = link_batch(pipeline, store, [_submission()])
    producer = AckingProducer()
    sink = ChangelogSink(SendWriter("cl", producer))
    # The submissions batch's own record (as services/linker/app.py sends it).
    [first] = changelog.family_records(linked.update, store.family_minted, store.family_decisions)
    asyncio.run(sink.write({0: [first]}))
    store.apply(linked.update, {0: 1})
    handler = DecisionHandler(
        fake,
        lambda: {0: store},
        lambda: True,
        IDS,
        UpdateTopics("m", "r", "u", "f"),
        "dlq",
        DecisionPositions(tmp_path / "review-decisions.duckdb"),
        producer,
        max_payload_bytes=100_000,
        changelog=sink,
    )
    assert next(m for m in linked.update.members.values() if m.member_key == KEY).decision == "pending_review"
    result = asyncio.run(handler.handle([_new_person()]))
    assert result.applied == 1 and result.records
    logged = [r for r in producer.sent if r.topic == "cl"]
    # the family's new state, then (same write) the decision positions the file now reflects
    assert [r.key for r in logged] == [FAM.encode(), FAM.encode(), b"~decision-positions"]
    at = producer.sent.index(logged[1])
    assert at > 1 and producer.acked_before[at] == at  # after every output of the decision was acknowledged
    record = changelog.decode(logged[1].value or b"", 0)
    assert [(d.member_key, d.outcome) for d in record.decisions] == [(KEY, ReviewOutcome.NEW_PERSON)]
    assert next(m for m in record.members if m.member_key == KEY).decision == "not_linked"
    assert record.decisions == tuple(store.decisions_of(KEY))
    assert changelog.decode_any(logged[2].value or b"", 0) == changelog.DecisionPositionsRecord({("dec", 0): 1})
    assert store.decision_positions() == {("dec", 0): 1}
    assert store.changelog_position(0) == 3
    # A fresh file restored from the changelog holds exactly what the decided file holds.
    fresh = LinkStore(tmp_path / "fresh.duckdb")
    assert changelog.restore(fresh, 0, LogReader(producer, "cl")) == 3
    assert fresh.decision_positions() == {("dec", 0): 1}
    assert fresh.sticky_decisions([KEY]) == store.sticky_decisions([KEY]) != {}
    assert fresh.decisions_of(KEY) == store.decisions_of(KEY)
    assert fresh.find_family_members([FAM]) == store.find_family_members([FAM])
    assert fresh.families([FAM]) == store.families([FAM]) and fresh.family_minted([FAM]) == store.family_minted([FAM])
    # The same revision again (a submissions batch): its record of the family keeps the decision log.
    again = link_batch(pipeline, fresh, [_submission()])
    [resent] = changelog.family_records(again.update, fresh.family_minted, fresh.family_decisions)
    assert resent.decisions == record.decisions
    member = next(m for m in again.update.members.values() if m.member_key == KEY)
    assert member.decision == next(m for m in record.members if m.member_key == KEY).decision
    fresh.close()
    store.close()
