"""Dead-letter classification: every kind of bad submission gets its exact reason, good ones pass."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.submission import FamilySubmission
from services.kafka.record import KafkaRecord
from services.linker.deadletter import OVERSIZED_PREFIX_BYTES, classify_submission
from tests.support.linker import FAMILY_KEY, member_payload, nik_for, submission_payload

SOURCE = KafkaRecord("regsosek.submissions.v1", 2, 41, None, None, 1_666_232_100_500)
KEY = FAMILY_KEY.encode()
NEXT_YEAR = dt.date.today().year + 1


def _valid() -> dict[str, object]:
    return submission_payload(
        [
            member_payload(1, "Ahmad Fauzi", nik_for(2)),
            member_payload(2, "Siti Aminah", nik_for(3, female=True), sex=2, relationship=2),
        ]
    )


def _with(path: tuple[object, ...], value: object) -> bytes:
    doc = _valid()
    target: object = doc
    for part in path[:-1]:
        target = target[part]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return json.dumps(doc).encode()


def _without(field: str) -> bytes:
    doc = _valid()
    del doc[field]
    return json.dumps(doc).encode()


GOOD = json.dumps(_valid()).encode()

CASES: list[tuple[str, bytes | None, bytes | None, DeadLetterReason]] = [
    ("null value", None, KEY, DeadLetterReason.EMPTY),
    ("empty bytes", b"", KEY, DeadLetterReason.EMPTY),
    ("2 MB payload", b'{"pad": "' + b"x" * 2_000_000 + b'"}', KEY, DeadLetterReason.TOO_LARGE),
    ("invalid UTF-8", b'{"schema_version": "1", "x": "\xff\xfe"}', KEY, DeadLetterReason.INVALID_UTF8),
    ("not JSON", b"hello, this is not json", KEY, DeadLetterReason.NOT_JSON),
    ("truncated JSON", GOOD[: len(GOOD) // 2], KEY, DeadLetterReason.NOT_JSON),
    ("null key", GOOD, None, DeadLetterReason.MISSING_KEY),
    ("key of another family", GOOD, b"3603010001000100001002", DeadLetterReason.KEY_MISMATCH),
    ("schema version 2", _with(("schema_version",), "2"), KEY, DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
    ("invalid NIK", _with(("members", 0, "nik"), "1234"), KEY, DeadLetterReason.INVALID_NIK),
    ("NIK serial 0000", _with(("members", 1, "nik"), "3603125505800000"), KEY, DeadLetterReason.INVALID_NIK),
    ("invalid KK", _with(("kk_number",), "36031217051500"), KEY, DeadLetterReason.INVALID_KK),
    (
        "future birth date",
        _with(("members", 0, "birth_date"), {"day": 1, "month": 1, "year": NEXT_YEAR}),
        KEY,
        DeadLetterReason.FUTURE_DATE,
    ),
    (
        "31 February",
        _with(("members", 0, "birth_date"), {"day": 31, "month": 2, "year": 1980}),
        KEY,
        DeadLetterReason.INVALID_DATE,
    ),
    ("duplicated member serials", _with(("members", 1, "serial"), 1), KEY, DeadLetterReason.DUPLICATE_MEMBER_SERIAL),
    ("wrong type: revision is text", _with(("revision",), "first"), KEY, DeadLetterReason.SCHEMA_VIOLATION),
    ("wrong type: members is an object", _with(("members",), {"serial": 1}), KEY, DeadLetterReason.SCHEMA_VIOLATION),
    ("missing members", _without("members"), KEY, DeadLetterReason.SCHEMA_VIOLATION),
    ("empty members", _with(("members",), []), KEY, DeadLetterReason.SCHEMA_VIOLATION),
    ("code out of range", _with(("members", 0, "presence"), 9), KEY, DeadLetterReason.SCHEMA_VIOLATION),
    ("JSON array", b"[1, 2, 3]", KEY, DeadLetterReason.SCHEMA_VIOLATION),
]


def test_a_valid_submission_passes() -> None:
    result = classify_submission(GOOD, KEY, SOURCE)
    assert isinstance(result, FamilySubmission)
    assert result.family_key.key == FAMILY_KEY
    assert [m.serial for m in result.members] == [1, 2]


@pytest.mark.parametrize(("case", "value", "key", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_dead_lettered_with_its_reason(
    case: str, value: bytes | None, key: bytes | None, reason: DeadLetterReason
) -> None:
    result = classify_submission(value, key, SOURCE)
    assert isinstance(result, DeadLetter), case
    assert result.reason is reason
    # The original bytes, untouched (an oversized payload: its first 64 KiB), and where they came from.
    assert result.payload == (value or b"")[:OVERSIZED_PREFIX_BYTES]
    if reason is DeadLetterReason.TOO_LARGE:
        assert "regsosek.submissions.v1[2]@41" in result.detail
    assert (result.source_topic, result.source_partition, result.source_offset) == (
        "regsosek.submissions.v1",
        2,
        41,
    )
    assert result.key == (key.decode() if key is not None else None)


def test_at_least_twelve_distinct_reasons_are_covered() -> None:
    assert len({c[3] for c in CASES}) >= 12


def test_dead_letter_is_deterministic_and_never_echoes_a_nik() -> None:
    bad_nik = "3603125505800000"
    value = _with(("members", 1, "nik"), bad_nik)
    first = classify_submission(value, KEY, SOURCE)
    second = classify_submission(value, KEY, SOURCE)
    assert isinstance(first, DeadLetter)
    assert first.model_dump_json() == second.model_dump_json()
    # The time is the source record's broker timestamp, not the wall clock.
    assert first.dead_lettered_at == SOURCE.time == dt.datetime(2022, 10, 20, 2, 15, 0, 500000, tzinfo=dt.UTC)
    assert bad_nik not in first.detail
    assert bad_nik not in json.dumps([e.model_dump() for e in first.field_errors])
    assert [e.location for e in first.field_errors] == ["members.1.nik"]
    assert base64.b64decode(first.payload_base64) == value


def test_the_size_limit_is_the_services_setting() -> None:
    assert isinstance(classify_submission(GOOD, KEY, SOURCE, max_bytes=len(GOOD)), FamilySubmission)
    small = classify_submission(GOOD, KEY, SOURCE, max_bytes=len(GOOD) - 1)
    assert isinstance(small, DeadLetter)
    assert small.reason is DeadLetterReason.TOO_LARGE
