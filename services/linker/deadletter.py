"""Dead-letter classification: raw Kafka record -> a valid FamilySubmission, or a DeadLetter with a reason.

The dead letter carries the original bytes, except for an oversized payload, of which it carries a
64 KiB prefix (a 2 MB payload in base64 does not fit in a Kafka record; the source topic keeps it).

A pure function of the record (no clock: the dead letter's time is the source record's broker timestamp),
so re-processing a bad record yields a byte-identical dead letter. The checks themselves live in the
contracts (`contracts.decode`); this module adds the source position and the service's size limit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.decode import ContractViolation, decode_family_submission
from contracts.submission import FamilySubmission

#: 1 MiB: a family questionnaire is a few kB; anything this big is a broken or hostile producer.
DEFAULT_MAX_PAYLOAD_BYTES = 1_048_576
#: An oversized payload cannot be copied whole into a dead letter (the broker would refuse the record);
#: the dead letter keeps this prefix, and the full original stays at its source topic/partition/offset.
OVERSIZED_PREFIX_BYTES = 65_536


@dataclass(frozen=True)
class SourcePosition:
    """Where a record was read: topic, partition, offset and its broker timestamp (epoch seconds)."""

    topic: str
    partition: int
    offset: int
    timestamp: float


def classify_submission(
    value: bytes | None,
    key: bytes | None,
    source: SourcePosition,
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> FamilySubmission | DeadLetter:
    """The validated submission, or the dead letter (original bytes, position, reason, detail)."""
    try:
        return decode_family_submission(value, key=key, max_bytes=max_bytes)
    except ContractViolation as violation:
        payload = value
        if violation.reason is DeadLetterReason.TOO_LARGE and value is not None:
            payload = value[:OVERSIZED_PREFIX_BYTES]
            violation.detail += (
                f"; only the first {OVERSIZED_PREFIX_BYTES} bytes are kept here, the original is at "
                f"{source.topic}[{source.partition}]@{source.offset}"
            )
        return violation.dead_letter(
            payload=payload,
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            key=key,
            now=dt.datetime.fromtimestamp(source.timestamp, dt.UTC),
        )
