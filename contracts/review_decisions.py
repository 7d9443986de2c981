"""Clerical review decisions (v1), the message on `linkage.review.decisions.v1` (key = member key).

A reviewer resolves one review task (`ReviewTask` on `linkage.review.v1`, identified by its `task_id`,
i.e. member key and family revision) by accepting one shown candidate, declaring the member a new person
(none of the candidates) or skipping it. An `undo` revokes the reviewer's previous decision on the task
(`revokes_decision_id`); the task is open again. Every decision records who decided, in which role,
when, and exactly which candidates with which probabilities were on the screen.

`decision_id` is deterministic: `decision_id_of(task_id, sequence)`, where `sequence` counts the
decisions already recorded on the task. A replayed or concurrently posted decision therefore carries the
same id as the one that won, so consumers (and the review app itself) can drop duplicates by id.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator


class ReviewOutcome(StrEnum):
    """What the reviewer decided for the task."""

    #: The member is the shown candidate `chosen_record_id`.
    ACCEPT = "accept"
    #: None of the shown candidates: the member is a person not (yet) in the master.
    NEW_PERSON = "new_person"
    #: Not decided; the task stays open for someone else (recorded for the audit and the queue).
    SKIP = "skip"
    #: Revokes the decision `revokes_decision_id` of the same task; the task is open again.
    UNDO = "undo"


class ReviewerRole(StrEnum):
    """Roles of the review app. Supervisors may also see raw NIKs."""

    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"


class ShownCandidate(BaseModel):
    """One candidate as it was on the reviewer's screen, in display order (rank 1 = the engine's best)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(ge=1, le=99)
    #: The master record id (the Dukcapil NIK) of the candidate.
    record_id: str = Field(pattern=r"^\d{16}$")
    person_id: str | None = None
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    match_weight: float | None = None


class ReviewDecision(BaseModel):
    """One reviewer decision on one review task (`linkage.review.decisions.v1`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1"] = "1"
    decision_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    task_id: str = Field(min_length=1, max_length=200)
    member_key: str = Field(pattern=r"^\d{22}-\d{2}$")
    revision: int = Field(ge=1)
    #: Decisions recorded on this task before this one (0 for the first).
    sequence: int = Field(ge=0)
    outcome: ReviewOutcome
    #: The accepted candidate's master record id (NIK); set exactly when `outcome` is accept.
    chosen_record_id: str | None = Field(default=None, pattern=r"^\d{16}$")
    chosen_person_id: str | None = None
    revokes_decision_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    reviewer_id: str = Field(min_length=1, max_length=64)
    reviewer_role: ReviewerRole
    decided_at: AwareDatetime
    shown: list[ShownCandidate]
    model_version: str

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.outcome is ReviewOutcome.ACCEPT) != (self.chosen_record_id is not None):
            raise ValueError("chosen_record_id is required for accept and not allowed otherwise")
        if self.chosen_record_id is not None and self.chosen_record_id not in {c.record_id for c in self.shown}:
            raise ValueError("the chosen candidate was not among the shown candidates")
        if (self.outcome is ReviewOutcome.UNDO) != (self.revokes_decision_id is not None):
            raise ValueError("revokes_decision_id is required for undo and not allowed otherwise")
        if self.decision_id != decision_id_of(self.task_id, self.sequence):
            raise ValueError("decision_id does not match task_id and sequence")
        return self


def decision_id_of(task_id: str, sequence: int) -> str:
    """The deterministic id of the `sequence`-th decision on a task (32 hex digits)."""
    return hashlib.sha256(f"review-decision|{task_id}|{sequence}".encode()).hexdigest()[:32]


#: Parser for consumers of `linkage.review.decisions.v1` (and the JSON Schema export).
REVIEW_DECISION_ADAPTER: TypeAdapter[ReviewDecision] = TypeAdapter(ReviewDecision)
