"""Decoding raw Kafka payloads at the edge: bytes in, a contract model or a classified ContractViolation out.

Consumers call `decode_family_submission(value, key=key)`; on `ContractViolation` they publish
`violation.dead_letter(...)` and move on (bad input is data). Infrastructure errors are not caught here.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from contracts.dead_letter import (
    DeadLetter,
    DeadLetterReason,
    FieldError,
    build_dead_letter,
    classify,
    describe,
    field_errors,
)
from contracts.submission import FAMILY_SUBMISSION_ADAPTER, FamilySubmissionV1
from contracts.topics import MAX_PAYLOAD_BYTES

__all__ = ["MAX_PAYLOAD_BYTES", "ContractViolation", "decode", "decode_family_submission"]

T = TypeVar("T")


class ContractViolation(Exception):
    """A payload that does not satisfy its contract. `reason` is what the dead letter records."""

    def __init__(self, reason: DeadLetterReason, detail: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.errors = errors

    def dead_letter(
        self,
        *,
        payload: bytes | None,
        source_topic: str,
        source_partition: int,
        source_offset: int,
        key: bytes | None,
        now: dt.datetime | None = None,
    ) -> DeadLetter:
        """The DeadLetter envelope for the rejected record."""
        return build_dead_letter(
            reason=self.reason,
            detail=self.detail,
            errors=self.errors,
            payload=payload,
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            key=key,
            now=now,
        )


def decode(adapter: TypeAdapter[T], payload: bytes | None, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> T:
    """Validate one JSON payload with `adapter`, raising ContractViolation with a classified reason."""
    if not payload:
        raise ContractViolation(DeadLetterReason.EMPTY, "the message has no payload")
    if len(payload) > max_bytes:
        raise ContractViolation(
            DeadLetterReason.TOO_LARGE, f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}"
        )
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContractViolation(
            DeadLetterReason.INVALID_UTF8, f"payload is not UTF-8 text (bad byte at position {e.start})"
        ) from None
    try:
        return adapter.validate_json(payload)
    except ValidationError as e:
        errors = field_errors(e)
        raise ContractViolation(classify(e), describe(errors), errors) from None


def decode_family_submission(
    payload: bytes | None, *, key: bytes | None, max_bytes: int = MAX_PAYLOAD_BYTES
) -> FamilySubmissionV1:
    """Decode a record of `regsosek.submissions.v1`; its key must be the submission's 22-digit family key."""
    if key is None or not key:
        raise ContractViolation(DeadLetterReason.MISSING_KEY, "the record has no key (the family key)")
    submission = decode(FAMILY_SUBMISSION_ADAPTER, payload, max_bytes=max_bytes)
    if key != submission.kafka_key:
        raise ContractViolation(
            DeadLetterReason.KEY_MISMATCH, "the record key differs from the family_key in the payload"
        )
    return submission
