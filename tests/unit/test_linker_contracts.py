"""The linker's outbound contracts: strict, frozen, and every record the pipeline emits fits the schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from contracts.decode import decode_family_submission
from contracts.linkage_outputs import (
    INTEGRATED_FAMILY_ADAPTER,
    LINKED_MEMBER_ADAPTER,
    REVIEW_TASK_ADAPTER,
    LinkedMember,
)
from contracts.schema_export import SCHEMA_DIR
from integration.ids import PersonIds
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch

# A v1 member record as written today: it must keep validating for as long as the topic is v1.
V1_MEMBER = (
    '{"band":"auto_link","decision":"linked","explanation":{"full_name":2.5,"nik":10.0},'
    '"family_key":"3603010001000100001001","match_weight":12.5,"matched_nik":"3603121505800002",'
    '"member_key":"3603010001000100001001-01","model_version":"members-2026-11-28","person_id":"p-abc",'
    '"person_id_kind":"master","probability":0.999,"revision":1,"runner_up_weight":-3.0,'
    '"schema_version":"1","sectoral":{"bpjs_id":null,"dtks_id":"DTKS-1"},'
    '"serial":1,"submission_id":"S-1-r1"}'
)


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def test_a_v1_member_record_still_validates() -> None:
    member = LINKED_MEMBER_ADAPTER.validate_json(V1_MEMBER)
    assert member.matched_nik == "3603121505800002"
    jsonschema.validate(json.loads(V1_MEMBER), _schema("linked_member.v1.json"))


def test_outbound_models_are_strict_and_frozen() -> None:
    doc = json.loads(V1_MEMBER)
    with pytest.raises(ValidationError, match="extra"):
        LinkedMember.model_validate({**doc, "surprise": 1})
    with pytest.raises(ValidationError):
        LinkedMember.model_validate({**doc, "schema_version": "2"})
    member = LinkedMember.model_validate(doc)
    with pytest.raises(ValidationError):
        member.revision = 2


def test_every_emitted_record_fits_its_committed_schema() -> None:
    fake = FakeMemberLinker.of(
        [
            FakeMasterPerson(nik_for(2), "Ahmad Fauzi", "3603121705150003", dtks_id="D-1"),
            FakeMasterPerson(nik_for(3, female=True), "Siti Aminah", "3603121705150003"),
        ]
    )
    doc = submission_payload(
        [
            member_payload(1, "Ahmad Fauzi", nik_for(2)),
            member_payload(2, "Sity Aminah", nik_for(3, female=True), sex=2, relationship=2),
            member_payload(3, "Budi", None, relationship=3),
        ]
    )
    sub = decode_family_submission(json.dumps(doc).encode(), key=FAMILY_KEY.encode())
    result = link_batch(
        SubmissionLinker(fake, PersonIds(b"k"), OutputTopics("m", "f", "r")), LinkStore(":memory:"), [sub]
    )
    checks: dict[str, tuple[Any, dict[str, Any]]] = {
        "m": (LINKED_MEMBER_ADAPTER, _schema("linked_member.v1.json")),
        "f": (INTEGRATED_FAMILY_ADAPTER, _schema("integrated_family.v1.json")),
        "r": (REVIEW_TASK_ADAPTER, _schema("review_task.v1.json")),
    }
    seen = {"m": 0, "f": 0, "r": 0}
    for rec in result.records:
        assert rec.value is not None
        adapter, schema = checks[rec.topic]
        adapter.validate_json(rec.value)
        jsonschema.validate(json.loads(rec.value), schema)
        seen[rec.topic] += 1
    assert seen == {"m": 3, "f": 1, "r": 1}
