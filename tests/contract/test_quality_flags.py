"""NIK disagreeing with stated sex or birth date, placeholder dates and unknown regions are warnings
carried on the record, never rejections."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.identity import QualityFlag
from contracts.population import POPULATION_RECORD_ADAPTER
from contracts.sectoral import SECTORAL_RECORD_ADAPTER
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from tests.contract.helpers import as_json, full_submission, load

F = QualityFlag


def _member_flags(**changes: Any) -> tuple[QualityFlag, ...]:
    """Quality flags of member 1 (a man, NIK 3603121505800002, born 15-05-1980) after `changes`."""
    doc = full_submission()
    doc["members"][0].update(changes)
    return FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc)).members[0].quality_flags


def test_consistent_members_have_no_flags() -> None:
    submission = FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(full_submission()))
    # Member 2 is a woman whose NIK day is 17 + 40; member 3 has no NIK.
    assert [m.quality_flags for m in submission.members[:3]] == [(), (), ()]


def test_placeholder_dates_on_both_sides_are_flagged() -> None:
    submission = FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(full_submission()))
    # Member 4: born "01-07-1945" with NIK date part 410745 (woman, 01-07).
    assert submission.members[3].quality_flags == (F.BIRTH_DATE_PLACEHOLDER, F.NIK_BIRTH_DATE_PLACEHOLDER)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sex": 2}, (F.NIK_SEX_MISMATCH,)),
        ({"sex": None}, ()),
        ({"birth_date": {"day": 16, "month": 5, "year": 1980}}, (F.NIK_BIRTH_DATE_MISMATCH,)),
        ({"birth_date": {"day": 15, "month": 5, "year": 1981}}, (F.NIK_BIRTH_DATE_MISMATCH,)),
        # Only the known parts of the stated date are compared with the NIK.
        ({"birth_date": {"day": None, "month": None, "year": 1980}}, ()),
        ({"birth_date": {"day": None, "month": 6, "year": 1980}}, (F.NIK_BIRTH_DATE_MISMATCH,)),
        (
            {"birth_date": {"day": 31, "month": 12, "year": 1980}},
            (F.BIRTH_DATE_PLACEHOLDER, F.NIK_BIRTH_DATE_MISMATCH),
        ),
        (
            {"sex": 2, "birth_date": {"day": 5, "month": 5, "year": 1980}},
            (F.NIK_SEX_MISMATCH, F.NIK_BIRTH_DATE_MISMATCH),
        ),
        # A region prefix not in today's Kemendagri list (district 36.03.99) is valid, with a warning.
        ({"nik": "3603991505800002"}, (F.NIK_REGION_UNKNOWN,)),
        ({"nik": None, "birth_date": {"day": 1, "month": 7, "year": 1960}}, (F.BIRTH_DATE_PLACEHOLDER,)),
    ],
    ids=[
        "sex_mismatch",
        "sex_missing",
        "day_mismatch",
        "year_mismatch",
        "year_only_agrees",
        "month_mismatch",
        "stated_placeholder",
        "sex_and_date",
        "unknown_region",
        "no_nik_placeholder",
    ],
)
def test_member_flags(changes: dict[str, Any], expected: tuple[QualityFlag, ...]) -> None:
    assert _member_flags(**changes) == expected


def test_flags_do_not_reject_and_are_serialised_but_not_read_back() -> None:
    doc = full_submission()
    doc["members"][0]["sex"] = 2
    submission = FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    dumped = submission.model_dump(mode="json")
    assert dumped["members"][0]["quality_flags"] == ["nik_sex_mismatch"]
    # A producer cannot inject flags: they are always recomputed from the data.
    doc["members"][1]["quality_flags"] = ["nik_sex_mismatch"]
    again = FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    assert again.members[1].quality_flags == ()


def test_population_record_flags() -> None:
    record = load("population_record.json")
    assert POPULATION_RECORD_ADAPTER.validate_python(record).quality_flags == ()
    record["sex"] = "F"
    record["birth_date"] = "1980-07-01"
    assert POPULATION_RECORD_ADAPTER.validate_python(record).quality_flags == (
        F.BIRTH_DATE_PLACEHOLDER,
        F.NIK_SEX_MISMATCH,
        F.NIK_BIRTH_DATE_MISMATCH,
    )


def test_sectoral_record_flags() -> None:
    dtks = load("sectoral_dtks.json")
    dtks["jenis_kelamin"] = "L"
    assert SECTORAL_RECORD_ADAPTER.validate_python(dtks).quality_flags == (F.NIK_SEX_MISMATCH,)
    bpjs = load("sectoral_bpjs.json")
    bpjs["tgl_lahir"] = "1980-05-16"
    assert SECTORAL_RECORD_ADAPTER.validate_python(bpjs).quality_flags == (F.NIK_BIRTH_DATE_MISMATCH,)
