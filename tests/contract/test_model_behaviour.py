"""Frozen models, tolerant inbound / strict outbound, round trips and the key helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.codes import Presence, Sex
from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetter, FieldError
from contracts.family import FamilyKey
from contracts.submission import FAMILY_SUBMISSION_ADAPTER, FamilySubmission
from tests.contract.helpers import as_json, fixture_paths, full_submission, kind_of, load


def _submission() -> FamilySubmission:
    return FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(full_submission()))


def test_full_example_is_read_into_typed_values() -> None:
    s = _submission()
    assert s.enumerated_at == dt.datetime(2022, 10, 20, 2, 15, tzinfo=dt.UTC)
    assert s.members[1].sex is Sex.FEMALE
    assert s.members[3].presence is Presence.DIED
    assert s.housing is not None and s.housing.floor_area_m2 == 36
    assert s.members[2].nik is None


def test_family_and_member_keys() -> None:
    s = _submission()
    assert s.family_key.key == "3603010001000100001001"
    assert s.kafka_key == b"3603010001000100001001"
    assert [s.member_key(m) for m in s.members[:2]] == [
        "3603010001000100001001-01",
        "3603010001000100001001-02",
    ]
    assert FamilyKey.parse("3603010001000100001001") == s.family_key
    assert s.family_key.bps_village_code == "3603010001"


@pytest.mark.parametrize("bad", ["360301000100010000100", "36030100010001000010011", "36030100010001000010a1"])
def test_family_key_parse_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="family key must be exactly 22 digits"):
        FamilyKey.parse(bad)


def test_member_key_serial_out_of_range() -> None:
    with pytest.raises(ValueError, match="member serial must be between 1 and 99"):
        _submission().family_key.member_key(100)


def test_models_are_frozen() -> None:
    s = _submission()
    with pytest.raises(ValidationError) as info:
        s.revision = 2
    assert info.value.errors()[0]["type"] == "frozen_instance"
    with pytest.raises(ValidationError):
        s.members[0].name = "X"
    # Collections are tuples, so members cannot be appended either.
    assert isinstance(s.members, tuple)


def test_inbound_ignores_unknown_fields_everywhere() -> None:
    doc = full_submission()
    doc["app_version"] = "capi 2.3"
    doc["members"][0]["pregnant"] = False
    doc["housing"]["solar_panel"] = True
    s = FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    assert s == _submission()
    assert "app_version" not in s.model_dump()


def test_outbound_forbids_unknown_fields() -> None:
    doc = load("dead_letter.json")
    doc["retry_count"] = 1
    with pytest.raises(ValidationError) as info:
        DEAD_LETTER_ADAPTER.validate_python(doc)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("retry_count",), "extra_forbidden")]
    with pytest.raises(ValidationError):
        FieldError(location="x", error_type="y", message="z", value="3603121505800002")  # type: ignore[call-arg]


@pytest.mark.parametrize("path", fixture_paths(), ids=lambda p: p.name)
def test_round_trip_model_json_model(path: Path) -> None:
    adapter, _ = kind_of(path)
    first = adapter.validate_json(path.read_bytes())
    again = adapter.validate_json(adapter.dump_json(first))
    assert again == first
    assert adapter.dump_json(again) == adapter.dump_json(first)


def test_tolerant_input_normalisation() -> None:
    s = FAMILY_SUBMISSION_ADAPTER.validate_json(
        (Path(__file__).parent / "fixtures" / "v1" / "family_submission_lenient.json").read_bytes()
    )
    head = s.members[0]
    assert head.nik is None  # "" means not known
    assert (head.birth_date.day, head.birth_date.month, head.birth_date.year) == (
        None,
        None,
        1970,
    )  # 98 unknown
    assert (s.address.rt, s.address.rw) == ("007", None)  # RT zero-padded, blank RW is null
    assert s.programmes is not None and s.programmes.pkh is False
    assert s.assets is None


def test_dead_letter_payload_is_the_original_bytes() -> None:
    letter = DeadLetter.model_validate(load("dead_letter.json"))
    assert letter.payload == b'{"schema_version": "1"}'
    doc = load("dead_letter.json")
    doc["payload_base64"] = "not base64!"
    with pytest.raises(ValidationError, match="payload_base64 must be standard base64"):
        DeadLetter.model_validate(doc)
