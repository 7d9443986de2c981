"""The checks the end-to-end tests rely on, on hand-made records (no broker): they must be able to fail."""

from __future__ import annotations

import json
import sys

from services.kafka.record import KafkaRecord
from tools.pipeline.outcome import MemberOutcome, Submissions
from tools.pipeline.sampler import stage_of
from tools.pipeline.streaming import percentile

FAMILY = "3603010001000100001001"


def _member(serial: int, revision: int, decision: str) -> bytes:
    return json.dumps({"member_key": f"{FAMILY}-{serial:02d}", "revision": revision, "decision": decision}).encode()


def _records(*values: tuple[int, bytes | None]) -> list[KafkaRecord]:
    return [KafkaRecord("m", 0, i, f"{FAMILY}-{serial:02d}".encode(), v, 0) for i, (serial, v) in enumerate(values)]


def test_identical_redeliveries_and_newer_revisions_are_not_conflicts() -> None:
    outcome = MemberOutcome.of(
        _records(
            (1, _member(1, 1, "linked")),
            (1, _member(1, 1, "linked")),  # re-delivered, identical
            (1, _member(1, 2, "not_linked")),  # a newer revision may decide differently
            (2, _member(2, 1, "linked")),
            (2, None),  # tombstoned
        )
    )
    assert outcome.conflicting_keys() == []
    assert outcome.duplicates() == 3
    assert outcome.latest() == {f"{FAMILY}-01": _member(1, 2, "not_linked")}
    assert outcome.decisions() == {"not_linked": 1}


def test_two_different_records_for_one_revision_are_a_conflict() -> None:
    outcome = MemberOutcome.of(_records((1, _member(1, 1, "linked")), (1, _member(1, 1, "pending_review"))))
    assert outcome.conflicting_keys() == [f"{FAMILY}-01"]


def test_expected_members_come_from_each_familys_latest_revision() -> None:
    key = {
        "province": "36",
        "regency": "03",
        "district": "010",
        "village": "001",
        "sls": "0001",
        "sub_sls": "00",
        "building_serial": "001",
        "family_serial": "001",
    }
    r1 = {"family_key": key, "revision": 1, "submission_id": "S-1-r1", "members": [{"serial": 1}, {"serial": 2}]}
    r2 = {"family_key": key, "revision": 2, "submission_id": "S-1-r2", "members": [{"serial": 1}]}
    subs = Submissions.of([json.dumps(r1).encode(), json.dumps(r2).encode()])
    assert subs.records[0][0] == FAMILY.encode() and subs.members == [2, 1]
    assert subs.expected_member_keys() == {f"{FAMILY}-01"}
    assert subs.truth_record_ids() == {f"{FAMILY}-01": "S-1-r2/1"}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (51.0, 99.0, 0.0)


def test_sampler_attributes_a_stack_to_its_stage() -> None:
    frame = sys._getframe()
    assert stage_of(frame) == "other"  # a test frame belongs to no pipeline stage
    assert stage_of(None) == "idle"
