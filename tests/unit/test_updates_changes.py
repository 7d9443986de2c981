"""Change records -> validated changes or dead letters with the right reason; the update contract."""

from __future__ import annotations

import json

import pytest

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.linkage_outputs import LinkBand, LinkedMember, MemberDecision, PersonIdKind
from contracts.linkage_updates import (
    LINKAGE_UPDATE_ADAPTER,
    ChangeSource,
    DecisionSummary,
    Merged,
    UpdateCause,
    UpdateEventType,
    update_event_id,
)
from services.kafka.record import KafkaRecord
from services.linker.updates.changes import Change, ChangeTopicKind, classify_change
from tests.support.updates import dtks_row, nik_for, population_change

POS = KafkaRecord("dukcapil.population.changes.v1", 2, 41, None, None, 1_700_000_000_000)
NIK = nik_for(11)


def _classify(value: bytes | None, kind: ChangeTopicKind = "population") -> Change | DeadLetter:
    return classify_change(value, b"ref-1", POS, kind, max_bytes=4096)


def _doc(**changes: object) -> bytes:
    doc = json.loads(population_change("born", "c1", NIK, "Ahmad Fauzi"))
    doc.update(changes)
    return json.dumps(doc).encode()


def _record(**changes: object) -> bytes:
    doc = json.loads(population_change("born", "c1", NIK, "Ahmad Fauzi"))
    doc["record"].update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("value", "kind", "reason"),
    [
        (None, "population", DeadLetterReason.EMPTY),
        (b"", "population", DeadLetterReason.EMPTY),
        (b"x" * 5000, "population", DeadLetterReason.TOO_LARGE),
        (b"\xff\xfe{}", "population", DeadLetterReason.INVALID_UTF8),
        (b"{not json", "population", DeadLetterReason.NOT_JSON),
        (_doc(schema_version="9"), "population", DeadLetterReason.SCHEMA_VIOLATION),
        (_doc(change="emigrated"), "population", DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
        (_record(nik="1234"), "population", DeadLetterReason.INVALID_NIK),
        (_record(kk_number="12"), "population", DeadLetterReason.INVALID_KK),
        (_doc(effective_date="2999-01-01"), "population", DeadLetterReason.FUTURE_DATE),
        (_doc(change="died"), "population", DeadLetterReason.SCHEMA_VIOLATION),  # died but alive
        (_doc(record=None), "population", DeadLetterReason.SCHEMA_VIOLATION),
        (dtks_row("D-1", NIK, "Ahmad"), "bpjs", DeadLetterReason.SCHEMA_VIOLATION),  # wrong topic
    ],
)
def test_bad_change_records_are_dead_lettered_with_their_reason(
    value: bytes | None, kind: ChangeTopicKind, reason: DeadLetterReason
) -> None:
    dead = _classify(value, kind)
    assert isinstance(dead, DeadLetter)
    assert dead.reason is reason
    assert (dead.source_topic, dead.source_partition, dead.source_offset, dead.key) == (POS.topic, 2, 41, "ref-1")
    assert dead.payload == (value or b"")
    assert NIK not in dead.detail  # details never echo input values
    assert dead == _classify(value, kind)  # deterministic (the record's broker time, no clock)


def test_valid_changes_carry_their_cause_and_master_person() -> None:
    change = _classify(population_change("moved", "c-9", NIK, "Ahmad Fauzi", village_code="3603122002"))
    assert isinstance(change, Change) and change.person is not None
    assert change.cause == UpdateCause(
        source=ChangeSource.DUKCAPIL, change="moved", change_id="c-9", effective_date=change.cause.effective_date
    )
    assert (change.person.nik, change.person.village_code, change.person.deceased) == (NIK, "3603122002", False)
    row = _classify(dtks_row("D-1", NIK, "Ahmad"), "dtks")
    assert isinstance(row, Change) and row.sectoral is not None
    assert (row.sectoral.source, row.sectoral.nik, row.sectoral.sectoral_id) == ("dtks", NIK, "D-1")
    assert row.cause.change_id.startswith("dtks-D-1-") and row.cause.change == "sectoral_upsert"


def test_update_contract_is_strict_and_round_trips() -> None:
    member = LinkedMember(
        member_key="3603010001000100001001-01",
        family_key="3603010001000100001001",
        serial=1,
        submission_id="S-1",
        revision=1,
        decision=MemberDecision.LINKED,
        band=LinkBand.AUTO_LINK,
        probability=0.99,
        matched_nik=NIK,
        person_id="p-new",
        person_id_kind=PersonIdKind.MASTER,
        model_version="m-1",
    )
    before = DecisionSummary(
        decision=MemberDecision.NOT_LINKED,
        band=LinkBand.NO_MATCH,
        person_id="u-old",
        person_id_kind=PersonIdKind.MINTED,
    )
    after = DecisionSummary(
        decision=MemberDecision.LINKED,
        band=LinkBand.AUTO_LINK,
        probability=0.99,
        person_id="p-new",
        person_id_kind=PersonIdKind.MASTER,
    )
    cause = UpdateCause(source=ChangeSource.DUKCAPIL, change="born", change_id="c1")
    event = Merged(
        event_id=update_event_id("c1", member.member_key, UpdateEventType.MERGED),
        member_key=member.member_key,
        family_key=member.family_key,
        cause=cause,
        before=before,
        after=after,
        member=member,
        old_person_id="u-old",
        new_person_id="p-new",
    )
    assert LINKAGE_UPDATE_ADAPTER.validate_json(event.model_dump_json()) == event
    bad = json.loads(event.model_dump_json()) | {"unexpected": 1}
    with pytest.raises(ValueError, match="unexpected"):
        LINKAGE_UPDATE_ADAPTER.validate_python(bad)
    assert update_event_id("c1", member.member_key, UpdateEventType.MERGED) != update_event_id(
        "c1", member.member_key, UpdateEventType.LINK_CREATED
    )
