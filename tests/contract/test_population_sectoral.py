"""PopulationRecord, PopulationChange (discriminated on `change`) and the sectoral records."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.dead_letter import field_errors
from contracts.population import (
    POPULATION_CHANGE_ADAPTER,
    POPULATION_RECORD_ADAPTER,
    KkChanged,
    PersonBorn,
    PersonCorrected,
    PersonDied,
    PersonMoved,
)
from contracts.sectoral import SECTORAL_RECORD_ADAPTER, BpjsRecord, DtksRecord
from tests.contract.helpers import load


def _errors(adapter: Any, doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(doc)
    return [(e.location, e.error_type, e.message) for e in field_errors(info.value)]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("population_change_born.json", PersonBorn),
        ("population_change_died.json", PersonDied),
        ("population_change_moved.json", PersonMoved),
        ("population_change_corrected.json", PersonCorrected),
        ("population_change_kk_changed.json", KkChanged),
    ],
)
def test_change_type_selects_the_model(name: str, cls: type) -> None:
    change = POPULATION_CHANGE_ADAPTER.validate_python(load(name))
    assert type(change) is cls
    assert change.record.nik.startswith("360312")


def test_unknown_change_type() -> None:
    doc = load("population_change_born.json")
    doc["change"] = "adopted"
    [(location, error_type, message)] = _errors(POPULATION_CHANGE_ADAPTER, doc)
    assert (location, error_type) == ("<message>", "union_tag_invalid")
    # The submitted tag is never repeated back (no echo of any submitted value); the known ones are named.
    assert message == "change must be one of: 'born', 'died', 'moved', 'corrected', 'kk_changed'"


def test_died_change_needs_a_dead_record() -> None:
    doc = load("population_change_died.json")
    doc["record"]["status"] = "alive"
    assert _errors(POPULATION_CHANGE_ADAPTER, doc) == [
        ("<message>", "inconsistent_fields", "record.status must be 'dead' in a 'died' change")
    ]


def test_effective_date_not_in_future() -> None:
    doc = load("population_change_moved.json")
    doc["effective_date"] = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert _errors(POPULATION_CHANGE_ADAPTER, doc) == [
        ("effective_date", "future_date", "effective_date must not be in the future")
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("nik", "3603121505800000", ("nik", "invalid_nik", "NIK serial (last 4 digits) must not be 0000")),
        (
            "kk_number",
            "3603121705150000",
            ("kk_number", "invalid_kk", "KK number serial (last 4 digits) must not be 0000"),
        ),
        ("sex", "L", ("sex", "literal_error", "Input should be 'M' or 'F'")),
        (
            "religion",
            "ISLAM KTP",
            (
                "religion",
                "enum",
                "Input should be 'ISLAM', 'KRISTEN', 'KATOLIK', 'HINDU', 'BUDDHA' or 'KONGHUCU'",
            ),
        ),
        (
            "village_code",
            "36.03.12.2001",
            ("village_code", "string_pattern_mismatch", "String should match pattern '^[0-9]{10}$'"),
        ),
        (
            "district_code",
            "360313",
            ("<message>", "inconsistent_fields", "district_code must be the first 6 digits of village_code"),
        ),
        ("status", "missing", ("status", "literal_error", "Input should be 'alive' or 'dead'")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_population_record_errors(field: str, value: str, expected: tuple[str, str, str]) -> None:
    doc = load("population_record.json")
    doc[field] = value
    assert _errors(POPULATION_RECORD_ADAPTER, doc) == [expected]


def test_population_record_birth_date_not_in_future() -> None:
    doc = load("population_record.json")
    doc["birth_date"] = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert _errors(POPULATION_RECORD_ADAPTER, doc) == [
        ("birth_date", "future_date", "birth_date must not be in the future")
    ]


def test_sectoral_source_selects_the_model() -> None:
    assert type(SECTORAL_RECORD_ADAPTER.validate_python(load("sectoral_dtks.json"))) is DtksRecord
    assert type(SECTORAL_RECORD_ADAPTER.validate_python(load("sectoral_bpjs.json"))) is BpjsRecord
    # Rows read straight from the Parquet files carry no `source`; the model classes default it.
    row = load("sectoral_bpjs_minimal.json")
    del row["source"]
    assert BpjsRecord.model_validate(row).source == "bpjs"


@pytest.mark.parametrize(
    ("name", "field", "value", "expected"),
    [
        (
            "sectoral_dtks.json",
            "desil",
            11,
            ("desil", "less_than_equal", "Input should be less than or equal to 10"),
        ),
        (
            "sectoral_dtks.json",
            "jenis_kelamin",
            "M",
            ("jenis_kelamin", "literal_error", "Input should be 'L' or 'P'"),
        ),
        ("sectoral_dtks.json", "nik", "1234", ("nik", "invalid_nik", "NIK must be exactly 16 digits")),
        (
            "sectoral_bpjs.json",
            "noka",
            "000123456789",
            ("noka", "string_pattern_mismatch", "String should match pattern '^[0-9]{13}$'"),
        ),
        (
            "sectoral_bpjs.json",
            "segmen",
            "PBPU",
            ("segmen", "literal_error", "Input should be 'PBI-APBN' or 'PBI-APBD'"),
        ),
        (
            "sectoral_bpjs.json",
            "tgl_lahir",
            "2999-01-01",
            ("tgl_lahir", "future_date", "birth date must not be in the future"),
        ),
    ],
    ids=["desil", "jenis_kelamin", "nik", "noka", "segmen", "tgl_lahir"],
)
def test_sectoral_errors(name: str, field: str, value: Any, expected: tuple[str, str, str]) -> None:
    doc = load(name)
    doc[field] = value
    assert _errors(SECTORAL_RECORD_ADAPTER, doc) == [expected]
