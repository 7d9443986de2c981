"""The review decision contract: consistent outcomes, deterministic ids, ReviewTask stays compatible."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from contracts.linkage_outputs import REVIEW_TASK_ADAPTER, ReviewCandidate, ReviewTask, to_canonical_json
from contracts.review_decisions import REVIEW_DECISION_ADAPTER, decision_id_of
from contracts.schema_export import SCHEMA_DIR
from tests.contract.helpers import load

FIXTURE = "review_decision_accept.json"


def _decision(**changes: Any) -> dict[str, Any]:
    doc = load(FIXTURE)
    doc.update(changes)
    return doc


def test_decision_ids_are_deterministic_and_distinct_per_sequence() -> None:
    assert decision_id_of("t/r1", 0) == decision_id_of("t/r1", 0)
    assert len({decision_id_of("t/r1", 0), decision_id_of("t/r1", 1), decision_id_of("t/r2", 0)}) == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"outcome": "new_person"},  # a chosen candidate without accept
        {"chosen_record_id": None},  # accept without a choice
        {"chosen_record_id": "3603014507850099"},  # a candidate that was not shown
        {"sequence": 1},  # id does not match the sequence
        {"revokes_decision_id": "0" * 32},  # revokes without undo
        {"reviewer_role": "admin"},
        {"decided_at": "2026-12-06T05:30:00"},  # no UTC offset
    ],
)
def test_inconsistent_decisions_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        REVIEW_DECISION_ADAPTER.validate_python(_decision(**changes))


def test_undo_and_new_person_are_valid_and_match_the_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "review_decision.v1.json").read_text())
    first = load(FIXTURE)["decision_id"]
    undo = _decision(
        outcome="undo",
        chosen_record_id=None,
        chosen_person_id=None,
        sequence=1,
        decision_id=decision_id_of(load(FIXTURE)["task_id"], 1),
        revokes_decision_id=first,
    )
    new = _decision(outcome="new_person", chosen_record_id=None, chosen_person_id=None)
    for doc in (undo, new):
        REVIEW_DECISION_ADAPTER.validate_python(doc)
        jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(doc)))


def test_review_task_without_the_new_fields_is_byte_identical() -> None:
    task = ReviewTask(
        task_id="k/r1", member_key="3603010001000100001001-01", submission_id="s", revision=1, model_version="m"
    )
    raw = to_canonical_json(task)
    assert b"candidates" not in raw and b"dtks_decile" not in raw
    with_candidates = task.model_copy(
        update={"candidates": [ReviewCandidate(rank=1, nik="3603014507850003", probability=0.5)], "dtks_decile": 2}
    )
    again = REVIEW_TASK_ADAPTER.validate_json(to_canonical_json(with_candidates))
    assert again.candidates[0].nik == "3603014507850003" and again.dtks_decile == 2
