"""DeadLetter: the envelope for a message we could not accept, published on the dead-letter topic.

Bad input is data, not an exception that stops the consumer: the edge turns it into a DeadLetter with a
reason from `DeadLetterReason`, a human-readable detail with field-level errors, and the original bytes
(base64) so it can be inspected and replayed. Details never include input values (they may hold a NIK).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, TypeAdapter, ValidationError

from contracts._base import OutboundModel
from contracts.errors import public_message


class DeadLetterReason(StrEnum):
    """Why a message was dead-lettered."""

    EMPTY = "empty"  #: no payload bytes (null or zero length)
    TOO_LARGE = "too_large"  #: payload above the size limit
    INVALID_UTF8 = "invalid_utf8"  #: payload bytes are not UTF-8 text
    NOT_JSON = "not_json"  #: text but not a JSON document
    MISSING_KEY = "missing_key"  #: no Kafka key, so the message cannot be partitioned by family
    KEY_MISMATCH = "key_mismatch"  #: Kafka key differs from the family key in the payload
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"  #: `schema_version` names a version we do not know
    INVALID_NIK = "invalid_nik"  #: a NIK cannot be a NIK (structure)
    INVALID_KK = "invalid_kk"  #: a KK number cannot be a KK number (structure)
    INVALID_DATE = "invalid_date"  #: a date that does not exist (31 February)
    FUTURE_DATE = "future_date"  #: a birth date or timestamp in the future
    DUPLICATE_MEMBER_SERIAL = "duplicate_member_serial"  #: two members share a serial
    SCHEMA_VIOLATION = "schema_violation"  #: any other contract violation (missing field, code out of range)
    FOREIGN_TEAM = "foreign_team"  #: a revision from a team other than the family's owner (not a supervisor)
    REVISION_JUMP = "revision_jump"  #: revision more than MAX_REVISION_STEP above the family's current one
    # Added inside v1 for clerical review decisions (`linkage.review.decisions.v1`, applied by the linker):
    UNKNOWN_MEMBER = "unknown_member"  #: a decision for a member the linker does not hold
    UNKNOWN_TASK = "unknown_task"  #: a task id or revision the linker never raised for the member
    STALE_TASK = "stale_task"  #: a newer revision of the family replaced the task the reviewer decided
    STALE_SEQUENCE = "stale_sequence"  #: the decision's sequence is not the next one on its task
    UNDO_MISMATCH = "undo_mismatch"  #: an undo that does not revoke the task's latest decision
    FORBIDDEN_UNDO = "forbidden_undo"  #: an undo of another reviewer's decision without the supervisor role
    SAME_REVIEWER = "same_reviewer"  #: a second review by the reviewer whose decision it should confirm


class FieldError(OutboundModel):
    """One field-level validation error, without the offending value."""

    location: str = Field(description="dotted path of the field, e.g. 'members.0.nik'")
    error_type: str = Field(description="pydantic or contract error type, e.g. 'invalid_nik'")
    message: str


def _is_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("payload_base64 must be standard base64") from None
    return value


class DeadLetter(OutboundModel):
    """A rejected message with where it came from and why (topic `regsosek.submissions.dlq.v1`)."""

    schema_version: Literal["1"] = "1"
    reason: DeadLetterReason
    detail: str = Field(description="human-readable explanation, incl. field-level errors; no input values")
    field_errors: tuple[FieldError, ...] = ()
    source_topic: str = Field(min_length=1)
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    key: str | None = Field(default=None, description="the original Kafka key as text (the family key)")
    payload_base64: Annotated[str, AfterValidator(_is_base64)] = Field(
        description="the original payload bytes, base64 (empty string when there was no payload); only a "
        "prefix when `original_size` is set"
    )
    dead_lettered_at: AwareDatetime
    original_size: int | None = Field(
        default=None,
        ge=0,
        description="set when payload_base64 holds only a prefix (the record must fit in one Kafka record): "
        "the size of the whole original payload in bytes",
    )
    original_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="set with original_size: the SHA-256 (hex) of the whole original payload, to find and "
        "verify the original at its source position",
    )

    @property
    def payload(self) -> bytes:
        """The original payload bytes."""
        return base64.b64decode(self.payload_base64)


#: Parser for tools that read the dead-letter topic back.
DEAD_LETTER_ADAPTER: TypeAdapter[DeadLetter] = TypeAdapter(DeadLetter)

# Contract error types raised by our validators, mapped to their dead-letter reason.
_REASON_BY_ERROR_TYPE: dict[str, DeadLetterReason] = {
    "json_invalid": DeadLetterReason.NOT_JSON,
    "union_tag_invalid": DeadLetterReason.UNKNOWN_SCHEMA_VERSION,
    "invalid_nik": DeadLetterReason.INVALID_NIK,
    "invalid_kk": DeadLetterReason.INVALID_KK,
    "invalid_date": DeadLetterReason.INVALID_DATE,
    "future_date": DeadLetterReason.FUTURE_DATE,
    "duplicate_member_serial": DeadLetterReason.DUPLICATE_MEMBER_SERIAL,
}


def field_errors(error: ValidationError) -> tuple[FieldError, ...]:
    """Field-level errors of a validation failure, without input values.

    For a discriminated union pydantic puts the tag first in each location (`'1'` for schema_version 1,
    `'dtks'` for a DTKS record); it is dropped so locations read like the document: `members.0.nik`.
    """
    tagged = error.title.startswith("tagged-union[")
    out: list[FieldError] = []
    for err in error.errors(include_url=False, include_input=False):
        loc = err["loc"][1:] if tagged else err["loc"]
        location = ".".join(str(part) for part in loc) or "<message>"
        out.append(FieldError(location=location, error_type=err["type"], message=public_message(err)))
    return tuple(out)


def classify(error: ValidationError) -> DeadLetterReason:
    """The dead-letter reason for a validation failure: the first contract-specific error wins."""
    for err in error.errors(include_url=False, include_input=False):
        reason = _REASON_BY_ERROR_TYPE.get(err["type"])
        if reason is not None:
            return reason
    return DeadLetterReason.SCHEMA_VIOLATION


def describe(errors: tuple[FieldError, ...]) -> str:
    """One line per field error: `location: message`."""
    return "; ".join(f"{e.location}: {e.message}" for e in errors)


def build_dead_letter(
    *,
    reason: DeadLetterReason,
    detail: str,
    payload: bytes | None,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    key: bytes | None,
    errors: tuple[FieldError, ...] = (),
    now: dt.datetime | None = None,
    original_size: int | None = None,
    original_sha256: str | None = None,
) -> DeadLetter:
    """Assemble a DeadLetter for a rejected Kafka record (`original_*`: `payload` is only a prefix)."""
    return DeadLetter(
        reason=reason,
        detail=detail,
        field_errors=errors,
        source_topic=source_topic,
        source_partition=source_partition,
        source_offset=source_offset,
        key=None if key is None else key.decode("utf-8", errors="replace"),
        payload_base64=base64.b64encode(payload or b"").decode("ascii"),
        dead_lettered_at=now or dt.datetime.now(dt.UTC),
        original_size=original_size,
        original_sha256=original_sha256,
    )
