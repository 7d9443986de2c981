"""Review decisions as a reviewer makes them, for the label tests (unit and integration): three candidate
NIKs, two member keys, one task and a `decision` builder."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome, ShownCandidate, decision_id_of

A, B, C = "3603121505800002", "3603125505800003", "3603121505810004"
KEY = "3603120001000100010001-01"
KEY2 = "3603120001000100010002-03"
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def decision(
    task_id: str,
    sequence: int,
    outcome: ReviewOutcome,
    *,
    chosen: str | None = None,
    revokes: str | None = None,
    reviewer: str = "rina",
    role: ReviewerRole = ReviewerRole.REVIEWER,
    shown: tuple[str, ...] = (A, B, C),
    member_key: str = KEY,
) -> ReviewDecision:
    """Decision `sequence` of `task_id` (its id derived from both), showing `shown` as ranked candidates."""
    return ReviewDecision(
        decision_id=decision_id_of(task_id, sequence),
        task_id=task_id,
        member_key=member_key,
        revision=1,
        sequence=sequence,
        outcome=outcome,
        chosen_record_id=chosen,
        revokes_decision_id=revokes,
        reviewer_id=reviewer,
        reviewer_role=role,
        decided_at=AT,
        shown=[ShownCandidate(rank=i + 1, record_id=n, probability=0.6) for i, n in enumerate(shown)],
        model_version="m1",
    )


T1 = f"{KEY}/r1"


def undo_of(accepted: ReviewDecision, task_id: str) -> ReviewDecision:
    """The reviewer's undo of `accepted` (decision 1 of `task_id`), otherwise the same decision."""
    return accepted.model_copy(
        update={
            "decision_id": decision_id_of(task_id, 1),
            "sequence": 1,
            "outcome": ReviewOutcome.UNDO,
            "chosen_record_id": None,
            "revokes_decision_id": accepted.decision_id,
        }
    )
