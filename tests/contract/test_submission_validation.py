"""FamilySubmission v1: each invalid field gives the right location, error type and message."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from contracts.dead_letter import DeadLetterReason, classify, field_errors
from contracts.identity import check_kk_number
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from tests.contract.helpers import as_json, full_submission

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (list indices as numbers) in the document."""

    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(path: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return apply


def _duplicate_serial(doc: dict[str, Any]) -> None:
    doc["members"][2]["serial"] = 1


_TOMORROW = dt.date.today() + dt.timedelta(days=1)
_FUTURE_STAMP = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()

# (case id, mutation, expected location, error type, exact message)
INVALID_CASES: list[tuple[str, Mutation, str, str, str]] = [
    (
        "nik_15_digits",
        _set("members.0.nik", "360312150580000"),
        "members.0.nik",
        "invalid_nik",
        "NIK must be exactly 16 digits",
    ),
    (
        "nik_letters",
        _set("members.0.nik", "36031215058O0002"),
        "members.0.nik",
        "invalid_nik",
        "NIK must be exactly 16 digits",
    ),
    (
        "nik_serial_0000",
        _set("members.1.nik", "3603125708850000"),
        "members.1.nik",
        "invalid_nik",
        "NIK serial (last 4 digits) must not be 0000",
    ),
    (
        "nik_impossible_date",
        _set("members.0.nik", "3603123102800002"),
        "members.0.nik",
        "invalid_nik",
        "NIK birth date part (DDMMYY, women day + 40) is not a real date",
    ),
    (
        "nik_female_day_72",
        _set("members.1.nik", "3603127208850003"),
        "members.1.nik",
        "invalid_nik",
        "NIK birth date part (DDMMYY, women day + 40) is not a real date",
    ),
    (
        "nik_unknown_province",
        _set("members.0.nik", "1003121505800002"),
        "members.0.nik",
        "invalid_nik",
        "NIK starts with an unknown province code",
    ),
    (
        "nik_district_00",
        _set("members.0.nik", "3603001505800002"),
        "members.0.nik",
        "invalid_nik",
        "NIK region part must not contain 00 as regency or district code",
    ),
    (
        "kk_serial_0000",
        _set("kk_number", "3603121705150000"),
        "kk_number",
        "invalid_kk",
        "KK number serial (last 4 digits) must not be 0000",
    ),
    (
        "kk_impossible_issue_date",
        _set("kk_number", "3603123102150003"),
        "kk_number",
        "invalid_kk",
        "KK number issue date part (DDMMYY) is not a real date",
    ),
    (
        "kk_short",
        _set("kk_number", "36031217051500"),
        "kk_number",
        "invalid_kk",
        "KK number must be exactly 16 digits",
    ),
    (
        "enumerated_at_naive",
        _set("enumerated_at", "2022-10-20T09:15:00"),
        "enumerated_at",
        "timezone_aware",
        "Input should have timezone info",
    ),
    (
        "enumerated_at_future",
        _set("enumerated_at", _FUTURE_STAMP),
        "enumerated_at",
        "future_date",
        "enumerated_at must not be in the future",
    ),
    (
        "birth_date_future",
        _set("members.2.birth_date", {"day": _TOMORROW.day, "month": _TOMORROW.month, "year": _TOMORROW.year}),
        "members.2.birth_date",
        "future_date",
        "birth_date must not be in the future",
    ),
    (
        "birth_year_future",
        _set("members.2.birth_date", {"year": dt.date.today().year + 1}),
        "members.2.birth_date",
        "future_date",
        "birth_date year must not be in the future",
    ),
    (
        "birth_date_not_real",
        _set("members.0.birth_date", {"day": 30, "month": 2, "year": 1980}),
        "members.0.birth_date",
        "invalid_date",
        "birth_date is not a real date (that day does not exist in that month)",
    ),
    (
        "birth_month_13",
        _set("members.0.birth_date.month", 13),
        "members.0.birth_date.month",
        "less_than_equal",
        "Input should be less than or equal to 12",
    ),
    (
        "presence_6",
        _set("members.0.presence", 6),
        "members.0.presence",
        "enum",
        "Input should be 1, 2, 3, 4 or 5",
    ),
    ("sex_3", _set("members.0.sex", 3), "members.0.sex", "enum", "Input should be 1 or 2"),
    (
        "marital_status_5",
        _set("members.0.marital_status", 5),
        "members.0.marital_status",
        "enum",
        "Input should be 1, 2, 3 or 4",
    ),
    (
        "relationship_9",
        _set("members.1.relationship", 9),
        "members.1.relationship",
        "enum",
        "Input should be 1, 2, 3, 4, 5, 6, 7 or 8",
    ),
    ("kk_code_3", _set("kk_code", 3), "kk_code", "enum", "Input should be 0, 1 or 2"),
    ("tenure_7", _set("housing.tenure", 7), "housing.tenure", "enum", "Input should be 1, 2, 3, 4, 5 or 6"),
    ("toilet_0", _set("housing.toilet", 0), "housing.toilet", "enum", "Input should be 1, 2, 3, 4 or 5"),
    (
        "difficulty_5",
        _set("members.0.disability.walking", 5),
        "members.0.disability.walking",
        "enum",
        "Input should be 1, 2, 3 or 4",
    ),
    (
        "age_negative",
        _set("members.0.age", -1),
        "members.0.age",
        "greater_than_equal",
        "Input should be greater than or equal to 0",
    ),
    (
        "revision_0",
        _set("revision", 0),
        "revision",
        "greater_than_equal",
        "Input should be greater than or equal to 1",
    ),
    (
        "district_2_digits",
        _set("family_key.district", "10"),
        "family_key.district",
        "string_pattern_mismatch",
        "String should match pattern '^[0-9]{3}$'",
    ),
    (
        "rt_4_digits",
        _set("address.rt", "0002"),
        "address.rt",
        "string_pattern_mismatch",
        "String should match pattern '^[0-9]{3}$'",
    ),
    (
        "no_members",
        _set("members", []),
        "members",
        "too_short",
        "Tuple should have at least 1 item",
    ),
    (
        "duplicate_serial",
        _duplicate_serial,
        "members",
        "duplicate_member_serial",
        "members: a member serial appears more than once; serials must be unique",
    ),
    ("missing_head_name", _delete("head_name"), "head_name", "missing", "Field required"),
    (
        "submission_id_crlf",
        _set("submission_id", "S-1\r\n2026-12-06 INFO forged line"),
        "submission_id",
        "string_pattern_mismatch",
        "String should match pattern '^[A-Za-z0-9._:-]+$'",
    ),
    (
        "enumerator_code_ansi",
        _set("enumerator_code", "E36\x1b[31m03"),
        "enumerator_code",
        "string_pattern_mismatch",
        "String should match pattern '^[A-Za-z0-9._:-]+$'",
    ),
    (
        "member_count_counts_the_died_member",
        _set("member_count", 4),
        "members",
        "member_count_mismatch",
        "member_count must equal the number of members living in the family (presence 1 or 4)",
    ),
    (
        "member_count_too_small",
        _set("member_count", 2),
        "members",
        "member_count_mismatch",
        "member_count must equal the number of members living in the family (presence 1 or 4)",
    ),
    (
        "kk_issued_after_the_visit",
        _set("kk_number", "3603122510220003"),
        "kk_number",
        "invalid_kk",
        "KK number issue date part (DDMMYY) is in the future",
    ),
    (
        "blank_member_name",
        _set("members.0.name", "   "),
        "members.0.name",
        "string_too_short",
        "String should have at least 1 character",
    ),
    (
        "serial_100",
        _set("members.3.serial", 100),
        "members.3.serial",
        "less_than_equal",
        "Input should be less than or equal to 99",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "location", "error_type", "message"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_field_is_reported_at_its_location(
    mutate: Mutation, location: str, error_type: str, message: str
) -> None:
    doc = full_submission()
    mutate(doc)
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    errors = field_errors(info.value)
    assert [(e.location, e.error_type, e.message) for e in errors] == [(location, error_type, message)]


def test_several_invalid_fields_are_all_reported() -> None:
    doc = full_submission()
    doc["members"][0]["nik"] = "3603121505800000"
    doc["members"][1]["sex"] = 0
    doc["kk_number"] = "123"
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    assert [e.location for e in field_errors(info.value)] == ["kk_number", "members.0.nik", "members.1.sex"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (_set("members.0.nik", "3603121505800000"), DeadLetterReason.INVALID_NIK),
        (_set("kk_number", "3603121705150000"), DeadLetterReason.INVALID_KK),
        (_set("enumerated_at", _FUTURE_STAMP), DeadLetterReason.FUTURE_DATE),
        (_set("members.0.birth_date", {"day": 30, "month": 2, "year": 1980}), DeadLetterReason.INVALID_DATE),
        (_duplicate_serial, DeadLetterReason.DUPLICATE_MEMBER_SERIAL),
        (_set("schema_version", "2"), DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
        (_delete("schema_version"), DeadLetterReason.SCHEMA_VIOLATION),
        (_set("members.0.presence", 9), DeadLetterReason.SCHEMA_VIOLATION),
    ],
    ids=["nik", "kk", "future", "invalid_date", "duplicate", "version", "no_version", "code_range"],
)
def test_validation_failures_are_classified_for_the_dead_letter_topic(
    mutate: Mutation, reason: DeadLetterReason
) -> None:
    doc = full_submission()
    mutate(doc)
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    assert classify(info.value) is reason


def test_unknown_schema_version_names_the_supported_ones_but_never_echoes_the_submitted_one() -> None:
    doc = full_submission()
    doc["schema_version"] = "<script>7</script>"
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    (error,) = field_errors(info.value)
    assert (error.location, error.error_type, error.message) == (
        "<message>",
        "union_tag_invalid",
        "schema_version must be one of: '1'",
    )


def test_field_errors_never_contain_the_offending_nik() -> None:
    doc = full_submission()
    bad_nik = "3603121505800000"
    doc["members"][0]["nik"] = bad_nik
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    rendered = repr(field_errors(info.value))
    assert "members.0.nik" in rendered
    assert bad_nik not in rendered


@pytest.mark.parametrize("size", [100, 300_000])
def test_an_oversized_member_list_costs_one_error_not_one_per_member(size: int) -> None:
    doc = full_submission()
    doc["members"] = [{"serial": "bad"}] * size
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    assert info.value.error_count() == 1
    assert [(e.location, e.error_type, e.message) for e in field_errors(info.value)] == [
        ("members", "too_long", "members should have at most 99 items")
    ]


def test_the_full_example_counts_only_the_living_members() -> None:
    doc = full_submission()
    presences = [m["presence"] for m in doc["members"]]
    assert presences == [1, 1, 4, 2] and doc["member_count"] == 3  # the died member is listed, not counted
    FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))


class _Year2030(dt.date):
    """`date.today()` in the middle of 2030: the year in which a replay would have changed its verdict."""

    @classmethod
    def today(cls) -> _Year2030:
        return cls(2030, 6, 1)


def test_kk_issue_date_is_judged_as_of_the_visit_not_today(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = full_submission()
    doc["kk_number"] = "3603123112300003"  # issued 31-12-(19)30; read as 2030 only from 2030 on
    assert doc["enumerated_at"].startswith("2022-10-20")
    FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))  # today
    monkeypatch.setattr("contracts.identity.dt", SimpleNamespace(date=_Year2030))
    # A replay in 2030 gives the same verdict (read as of today it would be "in the future").
    FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    with pytest.raises(PydanticCustomError, match="is in the future"):
        check_kk_number(doc["kk_number"])  # the today-based reading, still used for Dukcapil rows


def test_kk_errors_other_than_the_date_are_reported_when_enumerated_at_is_invalid() -> None:
    doc = full_submission()
    doc["enumerated_at"] = "yesterday"
    doc["kk_number"] = "3603122510220000"
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(as_json(doc))
    assert [(e.location, e.error_type, e.message) for e in field_errors(info.value)] == [
        ("enumerated_at", "datetime_from_date_parsing", "Input should be a valid datetime or date, input is too short"),
        ("kk_number", "invalid_kk", "KK number serial (last 4 digits) must not be 0000"),
    ]
