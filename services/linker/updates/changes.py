"""Inbound changes: raw records of the population and sectoral change topics -> `Change` or a dead letter.

Population changes (`dukcapil.population.changes.v1`) and sectoral rows (`sectoral.dtks.changes.v1`,
`sectoral.bpjs.changes.v1`) are validated by their contracts (`contracts.decode`); bad input becomes a
`DeadLetter` with the reason and the original bytes (a prefix, if they would not fit in one record:
`services.linker.deadletter.bounded_dead_letter`). A pure function of the record: the dead letter's
time is the source record's broker timestamp, so re-processing yields the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.decode import ContractViolation, decode
from contracts.linkage_updates import ChangeSource, UpdateCause
from contracts.population import POPULATION_CHANGE_ADAPTER
from contracts.sectoral import SECTORAL_RECORD_ADAPTER, BpjsRecord, DtksRecord
from contracts.topics import MAX_RECORD_BYTES
from integration.master import MasterPerson, SectoralSource, master_person
from services.kafka.record import KafkaRecord
from services.linker.deadletter import bounded_dead_letter

ChangeTopicKind = Literal["population", "dtks", "bpjs"]


@dataclass(frozen=True)
class SectoralFact:
    """A sectoral id for a NIK (a sectoral row that carries a NIK); `decile`: a DTKS row's `desil`."""

    source: SectoralSource
    nik: str
    sectoral_id: str
    decile: int | None = None


@dataclass(frozen=True)
class Change:
    """A validated change: its cause, and either a master person or a sectoral fact (None: no NIK).

    `time` is when the change happened, the event time of the records it causes: the change record's
    broker timestamp, or a review decision's `decided_at` (None only for a change journalled before the
    time was kept; `ChangeApplier` then uses the effective date).
    """

    cause: UpdateCause
    person: MasterPerson | None = None
    sectoral: SectoralFact | None = None
    time: dt.datetime | None = None


def classify_change(
    value: bytes | None,
    key: bytes | None,
    source: KafkaRecord,
    kind: ChangeTopicKind,
    *,
    max_bytes: int,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Change | DeadLetter:
    """The change a record carries, or its dead letter (reason, detail, original bytes, position)."""
    try:
        if kind == "population":
            pc = decode(POPULATION_CHANGE_ADAPTER, value, max_bytes=max_bytes)
            cause = UpdateCause(
                source=ChangeSource.DUKCAPIL, change=pc.change, change_id=pc.change_id, effective_date=pc.effective_date
            )
            return Change(cause, person=master_person(pc.record), time=source.time)
        row = decode(SECTORAL_RECORD_ADAPTER, value, max_bytes=max_bytes)
        if row.source != kind:
            raise ContractViolation(
                DeadLetterReason.SCHEMA_VIOLATION, f"a {row.source} record on the {kind} change topic"
            )
        assert value is not None  # decode rejects an empty payload
        row_id = row.id_dtks if isinstance(row, DtksRecord) else row.noka
        digest = hashlib.sha256(value).hexdigest()[:16]
        cause = UpdateCause(source=ChangeSource(kind), change="sectoral_upsert", change_id=f"{kind}-{row_id}-{digest}")
        decile = row.desil if isinstance(row, DtksRecord) else None
        fact = None if row.nik is None else SectoralFact(_source(row), row.nik, row_id, decile)
        return Change(cause, sectoral=fact, time=source.time)
    except ContractViolation as violation:
        return bounded_dead_letter(violation, value, key, source, max_record_bytes=max_record_bytes)


def _source(row: DtksRecord | BpjsRecord) -> SectoralSource:
    return "dtks" if isinstance(row, DtksRecord) else "bpjs"
