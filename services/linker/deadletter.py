"""Dead-letter classification: raw Kafka record -> a valid FamilySubmission, or a DeadLetter with a reason.

A dead letter must fit in one Kafka record, whatever the reason: the payload travels base64 (4/3 of its
size) next to the field errors and the key, so a bad payload of 786 KB already made a record the broker
refuses, and a refused dead letter stopped the linker. `bounded_dead_letter` therefore keeps at most
`MAX_FIELD_ERRORS` field errors, a key prefix of `MAX_KEY_BYTES`, and as many leading payload bytes as
fit under `contracts.topics.MAX_RECORD_BYTES` (an oversized payload: `OVERSIZED_PREFIX_BYTES` at most).
When the payload is cut, `original_size` and `original_sha256` name the whole original, which stays at
its source topic/partition/offset.

A pure function of the record (no clock: the dead letter's time is the source record's broker timestamp),
so re-processing a bad record yields a byte-identical dead letter. The checks themselves live in the
contracts (`contracts.decode`); this module adds the source position and the size limits.
"""

from __future__ import annotations

import hashlib

from contracts.dead_letter import DeadLetter, DeadLetterReason, build_dead_letter, describe
from contracts.decode import ContractViolation, decode_family_submission
from contracts.linkage_outputs import to_canonical_json
from contracts.submission import FamilySubmission
from contracts.topics import MAX_PAYLOAD_BYTES, MAX_RECORD_BYTES
from services.kafka.record import KafkaRecord

#: An oversized payload is beyond anything we accept: a prefix of this size is enough to see what it is.
OVERSIZED_PREFIX_BYTES = 65_536
#: Field errors kept in a dead letter (a payload of 300,000 bad members has 300,000 of them).
MAX_FIELD_ERRORS = 100
#: Bytes of the record key kept (a family key has 22; the key is the dead-letter record's key, too).
MAX_KEY_BYTES = 256
_SHORT_DETAIL_CHARS = 4096


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The key of the dead-letter record: the original key, cut to `MAX_KEY_BYTES`."""
    return None if key is None else key[:MAX_KEY_BYTES]


def bounded_dead_letter(
    violation: ContractViolation,
    value: bytes | None,
    key: bytes | None,
    source: KafkaRecord,
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> DeadLetter:
    """The dead letter of a rejected record, small enough that key + value stay within `max_record_bytes`."""
    errors = violation.errors
    detail = violation.detail
    if len(errors) > MAX_FIELD_ERRORS:
        errors = errors[:MAX_FIELD_ERRORS]
        detail = f"{describe(errors)}; and {len(violation.errors) - MAX_FIELD_ERRORS} more field errors"
    kept_key = dead_letter_key(key)
    if key is not None and kept_key is not None and len(kept_key) < len(key):
        detail += f"; the record key of {len(key)} bytes is cut to its first {MAX_KEY_BYTES}"
    payload = value or b""
    limit = OVERSIZED_PREFIX_BYTES if violation.reason is DeadLetterReason.TOO_LARGE else len(payload)
    digest = hashlib.sha256(payload).hexdigest()

    def build(kept: int) -> DeadLetter:
        cut = kept < len(payload)
        note = (
            (
                f"; only the first {kept} of {len(payload)} payload bytes are kept here, the original is at "
                f"{source.topic}[{source.partition}]@{source.offset}"
            )
            if cut
            else ""
        )
        return build_dead_letter(
            reason=violation.reason,
            detail=detail + note,
            errors=errors,
            payload=payload[:kept],
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            key=kept_key,
            now=source.time,
            original_size=len(payload) if cut else None,
            original_sha256=digest if cut else None,
        )

    def size(letter: DeadLetter) -> int:
        return len(to_canonical_json(letter)) + len(kept_key or b"")

    if size(build(0)) > max_record_bytes // 2:
        # Unusually long error texts (100 errors are normally about 10 KB): the reason and a short detail.
        errors, detail = (), detail[:_SHORT_DETAIL_CHARS]
    kept = min(limit, len(payload))
    letter = build(kept)
    excess = size(letter) - max_record_bytes
    if excess > 0:
        # Every 3 payload bytes are 4 base64 characters; the cut note and the digest add a few hundred.
        kept = max(0, kept - (excess + 512) // 4 * 3 - 3)
        letter = build(kept)
    return letter


def classify_submission(
    value: bytes | None,
    key: bytes | None,
    source: KafkaRecord,
    *,
    max_bytes: int = MAX_PAYLOAD_BYTES,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> FamilySubmission | DeadLetter:
    """The validated submission, or the dead letter (original bytes, position, reason, detail)."""
    try:
        return decode_family_submission(value, key=key, max_bytes=max_bytes)
    except ContractViolation as violation:
        return bounded_dead_letter(violation, value, key, source, max_record_bytes=max_record_bytes)
