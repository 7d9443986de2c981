"""Test doubles and sample records for the review app (shared by unit, integration and browser tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.linkage_outputs import ReviewCandidate, ReviewTask
from services.kafka.io import ProduceError, Value, to_bytes
from services.kafka.record import Delivered
from tests.support.gateway import family_key_of, sample_submission

#: Candidate NIKs of the sample tasks: the member's own NIK, a woman's NIK, one born a year later.
CANDIDATE_NIKS = ("3603121505800002", "3603125505800003", "3603121505810004")
PASSWORD = "correct-horse-battery"


def sample_task(
    family_serial: int = 1,
    member_serial: int = 1,
    revision: int = 1,
    *,
    candidates: int = 3,
    dtks_decile: int | None = None,
) -> ReviewTask:
    """A review task for a member of `sample_submission(family_serial)` with ranked candidates."""
    key = f"{family_key_of(sample_submission(family_serial))}-{member_serial:02d}"
    ranked = [
        ReviewCandidate(
            rank=i + 1,
            nik=nik,
            person_id=f"P-{nik[-4:]}",
            probability=round(0.7 - 0.2 * i, 3),
            match_weight=round(1.5 - 2.0 * i, 3),
            explanation={"name": round(2.0 - i, 3), "birth_date": round(1.0 - 1.5 * i, 3), "sex": -0.5 * i},
        )
        for i, nik in enumerate(CANDIDATE_NIKS[:candidates])
    ]
    best = ranked[0] if ranked else None
    return ReviewTask(
        task_id=f"{key}/r{revision}",
        member_key=key,
        submission_id=f"S-{family_serial}",
        revision=revision,
        candidate_nik=best.nik if best else None,
        candidate_person_id=best.person_id if best else None,
        probability=best.probability if best else None,
        match_weight=best.match_weight if best else None,
        explanation=best.explanation if best else {},
        model_version="test-model",
        candidates=ranked,
        dtks_decile=dtks_decile,
    )


@dataclass
class FakeProducer:
    """Keeps what it was asked to send; `fail` makes the next sends raise ProduceError."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    fail: bool = False
    #: The headers and timestamp of each sent record, in the order of `sent`.
    stamps: list[tuple[list[tuple[str, bytes]] | None, int | None]] = field(default_factory=list)

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: Value,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> Delivered:
        if self.fail:
            raise ProduceError("fake broker down")
        raw_key = key.decode() if isinstance(key, bytes) else str(key)
        self.sent.append((topic, raw_key, to_bytes(value)))
        self.stamps.append((headers, timestamp_ms))
        return Delivered(topic, 0, len(self.sent) - 1)


class FakeMaster:
    """Master rows from a dict (NIK -> row)."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self._rows = rows

    def persons(self, niks: list[str]) -> dict[str, dict[str, Any]]:
        return {n: self._rows[n] for n in niks if n in self._rows}

    def kk_members(self, kk_number: str) -> list[dict[str, Any]]:
        return [r for r in self._rows.values() if r["kk_number"] == kk_number]


def sample_master() -> FakeMaster:
    """Master rows for the sample candidates (two share a KK)."""

    def row(nik: str, name: str, sex: str, born: str, kk: str, rel: str) -> dict[str, Any]:
        return {
            "nik": nik,
            "kk_number": kk,
            "full_name": name,
            "sex": sex,
            "birth_place": "Tangerang",
            "birth_date": born,
            "relationship": rel,
            "village_code": "3603120001",
            "address": "Jl. Melati",
            "status": "alive",
        }

    return FakeMaster(
        {
            CANDIDATE_NIKS[0]: row(CANDIDATE_NIKS[0], "Ahmad Fauzi", "M", "1980-05-15", "3603121705150003", "HEAD"),
            CANDIDATE_NIKS[1]: row(CANDIDATE_NIKS[1], "Ahmad Fauziah", "F", "1980-05-15", "3603121705150003", "SPOUSE"),
            CANDIDATE_NIKS[2]: row(CANDIDATE_NIKS[2], "Achmad Fauzi", "M", "1981-05-15", "3603121705150011", "HEAD"),
        }
    )
