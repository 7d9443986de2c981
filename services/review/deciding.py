"""Turning a reviewer's action into a produced decision: claim in the store, produce (acks=all), confirm.

Nothing is produced twice: the store's compare-and-set on the task sequence lets one decision per
(task, sequence) through; the broker's acknowledgement is awaited before the page confirms, and a failed
produce releases the claim so the task is as it was.

Second reviews (docs/linker.md, "Second-reviewer rule"): an accept or new person on a second-review task
by the reviewer who made the held decision is refused here (`same_reviewer`), as the linker would refuse
it; an acknowledged one by someone else is counted as agreeing or not with the held decision (the same
outcome and chosen candidate: the linker's rule).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol

from pydantic import ValidationError

from contracts import events as ce
from contracts.review_decisions import ReviewDecision, ReviewOutcome, ShownCandidate, decision_id_of
from services.kafka.events import EventStamper
from services.kafka.io import ProduceError, Value, to_bytes
from services.kafka.record import Delivered
from services.review.metrics import ReviewMetrics
from services.review.store import DecisionRefused, ReviewStore, TaskRow, held_decision_id
from services.review.users import Reviewer

log = logging.getLogger("regsosek.review")
#: The outcomes that decide a task (the second-reviewer rule is about these).
_DECIDING = (ReviewOutcome.ACCEPT, ReviewOutcome.NEW_PERSON)


class Producer(Protocol):
    """What the app needs of a producer (services.kafka.io.JsonProducer fits)."""

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: Value,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> Delivered: ...


class Decider:
    """Records and produces decisions; the only writer of `linkage.review.decisions.v1` in the app."""

    def __init__(
        self,
        store: ReviewStore,
        producer: Callable[[], Producer],
        topic: str,
        metrics: ReviewMetrics,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._store, self._producer, self._topic = store, producer, topic
        self._metrics, self._clock = metrics, clock
        self._stamp = EventStamper({topic: ce.REVIEW_DECISION}, ce.REVIEW_SOURCE)

    def build(
        self,
        task: TaskRow,
        sequence: int,
        outcome: ReviewOutcome,
        reviewer: Reviewer,
        shown: list[ShownCandidate],
        chosen_rank: int | None = None,
        revokes: str | None = None,
    ) -> ReviewDecision:
        """The decision for an action on the page (raises DecisionRefused for an impossible choice)."""
        held = self.held(task)
        if held is not None and held.reviewer_id == reviewer.user_id and outcome in _DECIDING:
            raise DecisionRefused(
                "same_reviewer",
                "You made the decision this second review must confirm: another "
                "reviewer has to decide it. Nothing was recorded.",
                403,
            )
        chosen = None
        if outcome is ReviewOutcome.ACCEPT:
            chosen = next((c for c in shown if c.rank == chosen_rank), None)
            if chosen is None:
                raise DecisionRefused("invalid", "That candidate was not on the page.", 400)
        try:
            return self._decision(task, sequence, outcome, reviewer, shown, chosen, revokes)
        except ValidationError:  # e.g. a task record the contract cannot carry; never echo its values
            raise DecisionRefused(
                "invalid", "This task cannot be decided here (its record is malformed).", 400
            ) from None

    def held(self, task: TaskRow) -> ReviewDecision | None:
        """The held decision a second-review task asks to confirm, when this app recorded it."""
        held_id = held_decision_id(task.task_id)
        return self._store.decision(held_id) if held_id else None

    def _decision(
        self,
        task: TaskRow,
        sequence: int,
        outcome: ReviewOutcome,
        reviewer: Reviewer,
        shown: list[ShownCandidate],
        chosen: ShownCandidate | None,
        revokes: str | None,
    ) -> ReviewDecision:
        return ReviewDecision(
            decision_id=decision_id_of(task.task_id, sequence),
            task_id=task.task_id,
            member_key=task.member_key,
            revision=task.revision,
            sequence=sequence,
            outcome=outcome,
            chosen_record_id=chosen.record_id if chosen else None,
            chosen_person_id=chosen.person_id if chosen else None,
            revokes_decision_id=revokes,
            reviewer_id=reviewer.user_id,
            reviewer_role=reviewer.role,
            decided_at=self._clock(),
            shown=shown,
            model_version=task.record.model_version,
        )

    def _send(self, decision: ReviewDecision) -> Delivered:
        # CloudEvents headers: id = the decision's own (deterministic) id, time = decided_at, which is also
        # the record's timestamp, so the outbox re-sending a decision writes the same headers.
        value = to_bytes(decision)
        headers, ts = self._stamp(
            self._topic, decision.member_key.encode(), value, decision.decided_at, id=decision.decision_id
        )
        return self._producer().send(self._topic, decision.member_key, value, headers=headers, timestamp_ms=ts)

    def decide(self, decision: ReviewDecision) -> Delivered:
        """Claim, produce and confirm one decision; DecisionRefused says why nothing was produced."""
        self._store.claim(decision)
        try:
            delivered = self._send(decision)
        except ProduceError:
            self._store.release(decision)
            log.warning("decision %s not acknowledged by the broker; released", decision.decision_id)
            raise DecisionRefused(
                "broker",
                "The broker did not acknowledge the decision; nothing was recorded. Try again in a moment.",
                503,
            ) from None
        self._store.mark_produced(decision.decision_id)
        self._count(decision)
        log.info(
            "decision %s (%s) on %s by %s at %s[%d]@%d",
            decision.decision_id,
            decision.outcome.value,
            decision.task_id,
            decision.reviewer_id,
            delivered.topic,
            delivered.partition,
            delivered.offset,
        )
        return delivered

    def _count(self, decision: ReviewDecision) -> None:
        self._metrics.decisions.labels(
            regency=decision.member_key[:4], outcome=decision.outcome.value, role=decision.reviewer_role.value
        ).inc()
        held_id = held_decision_id(decision.task_id)
        if held_id is None or decision.outcome not in _DECIDING:
            return
        held = self._store.decision(held_id)
        if held is None:
            result = "unknown"
        elif held.outcome is decision.outcome and held.chosen_record_id == decision.chosen_record_id:
            result = "agree"
        else:
            result = "disagree"
        self._metrics.second_decisions.labels(result=result).inc()

    def flush_outbox(self) -> int:
        """Produce decisions claimed before a crash (same ids); returns how many were produced."""
        done = 0
        for decision in self._store.unproduced():
            self._send(decision)
            self._store.mark_produced(decision.decision_id)
            self._count(decision)
            done += 1
        return done
