"""Dead letters always fit in one Kafka record: payloads from 700 KB to 1 MiB, every reason, both paths.

Before the bound only `too_large` payloads were cut, so an invalid payload of about 786 KB made a dead
letter (base64, 4/3 of the size) that the broker refused, and the linker crash-looped on it.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetter, DeadLetterReason
from contracts.linkage_outputs import to_canonical_json
from contracts.topics import MAX_RECORD_BYTES
from services.kafka.record import KafkaRecord
from services.linker.deadletter import (
    MAX_FIELD_ERRORS,
    MAX_KEY_BYTES,
    OVERSIZED_PREFIX_BYTES,
    classify_submission,
    dead_letter_key,
)
from services.linker.updates.changes import classify_change
from tests.support.linker import FAMILY_KEY, member_payload, submission_payload

SOURCE = KafkaRecord("regsosek.submissions.v1", 3, 1234, None, None, 1_700_000_000_000)
CHANGE_SOURCE = KafkaRecord("dukcapil.population.changes.v1", 1, 77, None, None, 1_700_000_000_000)
KEY = FAMILY_KEY.encode()
LIMIT = 1_048_576  # the linker's payload limit: everything up to it is classified, not `too_large`
#: The broker's default message.max.bytes and the producers' max.request.size.
BROKER_LIMIT = 1_048_576
SIZES = [700_000, 786_000, 800_000, 900_000, 1_000_000, LIMIT]


def _not_json(size: int) -> bytes:
    return b"{" + b"x" * (size - 1)


def _schema_violation(size: int) -> bytes:
    head = b'{"schema_version":"1","pad":"'
    return head + b"y" * (size - len(head) - 2) + b'"}'


def _invalid_utf8(size: int) -> bytes:
    return b'{"a":"' + b"\xff" * (size - 6)


def _record_bytes(key: bytes | None, letter: DeadLetter) -> int:
    """What the producer checks against max.request.size: one record in a batch of its own."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, to_canonical_json(letter), [])


def _assert_fits_and_names_the_original(letter: DeadLetter, value: bytes, key: bytes | None) -> None:
    out_key = dead_letter_key(key)
    assert len(to_canonical_json(letter)) + len(out_key or b"") <= MAX_RECORD_BYTES
    assert _record_bytes(out_key, letter) < BROKER_LIMIT
    # What is kept is the original's prefix; the digest and size identify the whole.
    assert value.startswith(letter.payload)
    if len(letter.payload) < len(value):
        assert letter.original_size == len(value)
        assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
        assert f"[{letter.source_partition}]@{letter.source_offset}" in letter.detail
        assert len(letter.payload) > 600_000  # as much as fits, not a token prefix
    else:
        assert letter.original_size is None and letter.original_sha256 is None
    # The record still parses as the published contract.
    assert DEAD_LETTER_ADAPTER.validate_json(to_canonical_json(letter)) == letter


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_not_json, DeadLetterReason.NOT_JSON),
        (_schema_violation, DeadLetterReason.SCHEMA_VIOLATION),
        (_invalid_utf8, DeadLetterReason.INVALID_UTF8),
    ],
)
def test_submission_dead_letters_fit_from_700_kb_to_1_mib(size: int, make: object, reason: DeadLetterReason) -> None:
    value = make(size)  # type: ignore[operator]
    assert len(value) == size
    letter = classify_submission(value, KEY, SOURCE, max_bytes=LIMIT)
    assert isinstance(letter, DeadLetter)
    assert letter.reason is reason
    _assert_fits_and_names_the_original(letter, value, KEY)
    # 700 KB fits whole (933 KB in base64); from 786 KB on (what the broker refused before) it is cut.
    assert letter.original_size == (None if size == 700_000 else size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["population", "dtks", "bpjs"])
def test_change_dead_letters_fit_from_700_kb_to_1_mib(size: int, kind: str) -> None:
    value = _schema_violation(size)
    letter = classify_change(value, b"ref-1", CHANGE_SOURCE, kind, max_bytes=LIMIT)  # type: ignore[arg-type]
    assert isinstance(letter, DeadLetter)
    assert letter.reason in {DeadLetterReason.SCHEMA_VIOLATION, DeadLetterReason.UNKNOWN_SCHEMA_VERSION}
    _assert_fits_and_names_the_original(letter, value, b"ref-1")
    assert letter.original_size == (None if size == 700_000 else size)


def test_a_small_bad_payload_is_kept_whole_without_digest() -> None:
    value = _not_json(2000)
    letter = classify_submission(value, KEY, SOURCE)
    assert isinstance(letter, DeadLetter)
    assert letter.payload == value
    assert (letter.original_size, letter.original_sha256) == (None, None)


def test_an_oversized_payload_keeps_its_64_kib_prefix_and_digest() -> None:
    value = _not_json(2_000_000)
    letter = classify_submission(value, KEY, SOURCE, max_bytes=LIMIT)
    assert isinstance(letter, DeadLetter)
    assert letter.reason is DeadLetterReason.TOO_LARGE
    assert letter.payload == value[:OVERSIZED_PREFIX_BYTES]
    assert letter.original_size == 2_000_000
    assert letter.original_sha256 == hashlib.sha256(value).hexdigest()


def test_many_field_errors_are_bounded_with_their_total() -> None:
    # 99 members (the contract's bound) with an invalid NIK, sex and relationship each: hundreds of errors.
    members = [member_payload(i + 1, "Ahmad", "1234", sex=9, relationship=99) for i in range(99)]
    value = json.dumps(submission_payload(members)).encode()
    letter = classify_submission(value, KEY, SOURCE, max_bytes=LIMIT)
    assert isinstance(letter, DeadLetter)
    assert letter.reason is not DeadLetterReason.TOO_LARGE
    assert len(letter.field_errors) == MAX_FIELD_ERRORS
    assert "more field errors" in letter.detail
    _assert_fits_and_names_the_original(letter, value, KEY)


@pytest.mark.parametrize("size", [700_000, 1_000_000])
def test_a_huge_key_is_cut_in_the_letter_and_the_record_key(size: int) -> None:
    key = b"k" * size
    value = _not_json(size)
    letter = classify_submission(value, key, SOURCE, max_bytes=LIMIT)
    assert isinstance(letter, DeadLetter)
    assert letter.key == "k" * MAX_KEY_BYTES
    assert dead_letter_key(key) == key[:MAX_KEY_BYTES]
    _assert_fits_and_names_the_original(letter, value, key)


def test_the_bound_is_a_pure_function_of_the_record() -> None:
    value = _schema_violation(900_000)
    first = classify_submission(value, KEY, SOURCE, max_bytes=LIMIT)
    second = classify_submission(value, KEY, SOURCE, max_bytes=LIMIT)
    assert isinstance(first, DeadLetter) and isinstance(second, DeadLetter)
    assert to_canonical_json(first) == to_canonical_json(second)
