"""The edge decoder: raw Kafka bytes -> FamilySubmission, or a classified ContractViolation -> DeadLetter."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from contracts.decode import ContractViolation, decode_family_submission
from tests.contract.helpers import as_json, full_submission

KEY = b"3603010001000100001001"


def test_valid_record_decodes() -> None:
    submission = decode_family_submission(as_json(full_submission()), key=KEY)
    assert submission.submission_id == "S-3603-0000001-r1"


def _bad_nik_payload() -> bytes:
    doc = full_submission()
    doc["members"][1]["nik"] = "3603125708850000"
    return as_json(doc)


def _other_family_payload() -> bytes:
    doc = full_submission()
    doc["family_key"]["family_serial"] = "002"
    return as_json(doc)


@pytest.mark.parametrize(
    ("payload", "key", "reason", "detail"),
    [
        (None, KEY, DeadLetterReason.EMPTY, "the message has no payload"),
        (b"", KEY, DeadLetterReason.EMPTY, "the message has no payload"),
        (b"x" * 2001, KEY, DeadLetterReason.TOO_LARGE, "payload of 2001 bytes exceeds the limit of 2000"),
        (
            b'{"a": "\xff"}',
            KEY,
            DeadLetterReason.INVALID_UTF8,
            "payload is not UTF-8 text (bad byte at position 7)",
        ),
        (
            b"schema_version=1",
            KEY,
            DeadLetterReason.NOT_JSON,
            "<message>: Invalid JSON: expected value at line 1 column 1",
        ),
        (
            as_json(full_submission()),
            None,
            DeadLetterReason.MISSING_KEY,
            "the record has no key (the family key)",
        ),
        (
            _bad_nik_payload(),
            KEY,
            DeadLetterReason.INVALID_NIK,
            "members.1.nik: NIK serial (last 4 digits) must not be 0000",
        ),
        (
            _other_family_payload(),
            KEY,
            DeadLetterReason.KEY_MISMATCH,
            "the record key differs from the family_key in the payload",
        ),
        (
            b'{"schema_version": "1"}',
            KEY,
            DeadLetterReason.SCHEMA_VIOLATION,
            "submission_id: Field required; revision: Field required; enumerator_code: Field required; "
            "enumerated_at: Field required; family_key: Field required; head_name: Field required; "
            "member_count: Field required; members: Field required",
        ),
        (b"[1, 2]", KEY, DeadLetterReason.SCHEMA_VIOLATION, "<message>: Input should be an object"),
    ],
    ids=[
        "none",
        "empty",
        "too_large",
        "utf8",
        "not_json",
        "no_key",
        "nik",
        "key_mismatch",
        "missing",
        "array",
    ],
)
def test_violations_are_classified(
    payload: bytes | None, key: bytes | None, reason: DeadLetterReason, detail: str
) -> None:
    limit = 2000 if payload is not None and payload.startswith(b"xxx") else 1_000_000
    with pytest.raises(ContractViolation) as info:
        decode_family_submission(payload, key=key, max_bytes=limit)
    assert (info.value.reason, info.value.detail) == (reason, detail)


def test_dead_letter_envelope_keeps_the_original_bytes_and_position() -> None:
    payload = _bad_nik_payload()
    with pytest.raises(ContractViolation) as info:
        decode_family_submission(payload, key=KEY)
    now = dt.datetime(2022, 10, 20, 2, 15, tzinfo=dt.UTC)
    letter = info.value.dead_letter(
        payload=payload,
        source_topic="regsosek.submissions.v1",
        source_partition=2,
        source_offset=77,
        key=KEY,
        now=now,
    )
    assert letter.payload == payload
    assert base64.b64decode(letter.payload_base64) == payload
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "regsosek.submissions.v1",
        2,
        77,
    )
    assert letter.key == KEY.decode()
    assert letter.reason is DeadLetterReason.INVALID_NIK
    assert [(e.location, e.error_type) for e in letter.field_errors] == [("members.1.nik", "invalid_nik")]
    assert letter.dead_lettered_at == now
    # Round trip through the wire format, and no NIK in the human-readable parts.
    assert DEAD_LETTER_ADAPTER.validate_json(letter.model_dump_json()) == letter
    assert "3603125708850000" not in letter.detail + repr(letter.field_errors)


def test_dead_letter_without_payload_or_key() -> None:
    with pytest.raises(ContractViolation) as info:
        decode_family_submission(None, key=KEY)
    letter = info.value.dead_letter(payload=None, source_topic="t", source_partition=0, source_offset=0, key=None)
    assert (letter.payload_base64, letter.key, letter.reason) == ("", None, DeadLetterReason.EMPTY)
    assert letter.dead_lettered_at.tzinfo is not None
