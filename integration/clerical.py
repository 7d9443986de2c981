"""Clerical review decisions as link rules (pure: no Kafka, no store, no clock).

A reviewer's decision (`linkage.review.decisions.v1`, contracts/review_decisions.py) is judged against
the member's current state and the task's decisions applied so far (`judge`), and the decisions of a
task are replayed into the member's effective human decision (`effective`). That decision is sticky:
it overrides the engine's link for the member (`override_link`) whenever the member's identity fields
are those the reviewer saw (`identity_of`), whether the family is re-processed, a new revision with the
same member data arrives, or the model changes.

- `accept`: the member is linked to the chosen master record, band `clerical_link`.
- `new_person`: the member is a person not in the master: band `no_match`, no master candidate.
- `skip`: nothing changes (it takes its place in the task's sequence).
- `undo`: reverts the task's latest decision; the member's link is what it was before that decision.
  Undoing another reviewer's decision needs the supervisor role (a supervisor's reversal).

The second-reviewer rule (`SecondReview`, configurable): an accept or new_person by a reviewer (not a
supervisor) in a flagged district, or one that overrides the engine's candidate while the engine gave it
at least `min_probability`, is held: recorded, not applied, and a second-review task
`<task id of the member>/second-<decision id>` is raised. A decision on that task by another reviewer
that agrees (same outcome and candidate) applies; one that disagrees is held in turn (another second
review); a supervisor's decision applies at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome
from integration.port import MemberLink, MemberQuery


class DecisionReason(StrEnum):
    """Why a decision was dead-lettered (the dead letter's reason; an undecodable one gets the contract's
    own reason: not_json, schema_violation, ...)."""

    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_TASK = "unknown_task"
    STALE_TASK = "stale_task"
    STALE_SEQUENCE = "stale_sequence"
    UNDO_MISMATCH = "undo_mismatch"
    FORBIDDEN_UNDO = "forbidden_undo"
    SAME_REVIEWER = "same_reviewer"


class Verdict(StrEnum):
    """What to do with a decision that is not dead-lettered."""

    APPLY = "apply"
    DUPLICATE = "duplicate"  # its id was applied already: dropped (a re-delivery or the app's replay)


@dataclass(frozen=True)
class AppliedDecision:
    """One decision applied to a task, as the link store keeps it (no reviewer id: not needed here)."""

    decision_id: str
    task_id: str
    member_key: str
    sequence: int
    outcome: ReviewOutcome
    chosen_nik: str | None
    probability: float | None
    match_weight: float | None
    identity: str
    revokes: str | None = None
    reviewer_id: str = ""
    held: bool = False  # waits for a second reviewer (not part of the member's effective decision)


@dataclass(frozen=True)
class StickyDecision:
    """A member's effective human decision: accept (with the chosen NIK) or new_person."""

    decision_id: str
    task_id: str
    outcome: ReviewOutcome
    chosen_nik: str | None
    probability: float | None
    match_weight: float | None
    identity: str


def identity_of(query: MemberQuery) -> str:
    """A digest of the member's identity fields as the engine saw them (NIK, name, sex, birth date and
    year): a new revision with the same digest shows the reviewer's member unchanged. An unknown (None)
    field is digested as an empty string, as when queries held "" for it: stored digests still hold."""
    parts = (query.nik, query.full_name, query.sex, query.birth_date)
    text = "\x1f".join([*(p or "" for p in parts), str(query.birth_year)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def task_revision(task_id: str, member_key: str) -> int | None:
    """The revision in a task id `<member key>/r<revision>[/<change id>]`, or None if it is not one."""
    head, sep, rest = task_id.partition("/r")
    if head != member_key or not sep:
        return None
    digits = rest.split("/", 1)[0]
    return int(digits) if digits.isdigit() and len(digits) <= 19 else None


def judge(
    decision: ReviewDecision, current_revision: int | None, log: Sequence[AppliedDecision]
) -> Verdict | DecisionReason:
    """Whether `decision` applies to the member now (`current_revision`: None when the member is unknown)
    given the decisions already applied to its task (`log`, in sequence order)."""
    if current_revision is None:
        return DecisionReason.UNKNOWN_MEMBER
    revision = task_revision(decision.task_id, decision.member_key)
    if revision is None or revision != decision.revision or revision > current_revision:
        return DecisionReason.UNKNOWN_TASK
    if any(d.decision_id == decision.decision_id for d in log):
        return Verdict.DUPLICATE
    if revision < current_revision:
        return DecisionReason.STALE_TASK  # a newer revision replaced the task the reviewer saw
    if decision.sequence != len(log):
        return DecisionReason.STALE_SEQUENCE
    if decision.outcome is ReviewOutcome.UNDO:
        last = log[-1] if log else None
        if last is None or last.decision_id != decision.revokes_decision_id or last.outcome is ReviewOutcome.UNDO:
            return DecisionReason.UNDO_MISMATCH
        if last.reviewer_id != decision.reviewer_id and decision.reviewer_role is not ReviewerRole.SUPERVISOR:
            return DecisionReason.FORBIDDEN_UNDO
    return Verdict.APPLY


@dataclass(frozen=True)
class SecondReview:
    """Which decisions need a second, agreeing reviewer (off by default)."""

    #: District codes (the first 7 digits of the family key) a supervisor flagged.
    districts: frozenset[str] = frozenset()
    #: A decision against the engine's candidate needs a second reviewer when the engine gave that
    #: candidate at least this probability (None: never for this reason).
    min_probability: float | None = None

    def needed(self, decision: ReviewDecision, engine_nik: str | None, engine_probability: float | None) -> bool:
        """Whether `decision` (on a first-review task) must wait for a second reviewer."""
        if decision.reviewer_role is ReviewerRole.SUPERVISOR:
            return False
        if decision.outcome not in (ReviewOutcome.ACCEPT, ReviewOutcome.NEW_PERSON):
            return False
        if decision.member_key[:7] in self.districts:
            return True
        overrides = decision.outcome is ReviewOutcome.NEW_PERSON or decision.chosen_record_id != engine_nik
        limit = self.min_probability
        return overrides and limit is not None and engine_probability is not None and engine_probability >= limit


SECOND_REVIEW_MARK = "/second-"


def second_review_task(held: AppliedDecision) -> str:
    """The task id of the second review of a held decision."""
    base = held.task_id.split(SECOND_REVIEW_MARK, 1)[0]
    return f"{base}{SECOND_REVIEW_MARK}{held.decision_id}"


def held_decision(task_id: str, log: Sequence[AppliedDecision]) -> AppliedDecision | None:
    """The held decision a second-review task asks to confirm (None: not a second-review task, or the
    held decision was undone)."""
    if SECOND_REVIEW_MARK not in task_id:
        return None
    wanted = task_id.rsplit(SECOND_REVIEW_MARK, 1)[1]
    if any(d.revokes == wanted for d in log):
        return None  # its reviewer (or a supervisor) undid it: nothing left to confirm
    return next((d for d in log if d.decision_id == wanted and d.held), None)


def second_opinion(decision: ReviewDecision, held: AppliedDecision) -> bool | DecisionReason:
    """On a second-review task: True when `decision` agrees with the held one (applies both), False when
    it disagrees (held in turn, unless a supervisor decided), SAME_REVIEWER when the same person decided."""
    if decision.reviewer_id == held.reviewer_id:
        return DecisionReason.SAME_REVIEWER
    return decision.outcome is held.outcome and decision.chosen_record_id == held.chosen_nik


def applied(decision: ReviewDecision, identity: str, *, held: bool = False) -> AppliedDecision:
    """The log entry of an applied decision; the chosen candidate's scores come from what was shown."""
    shown = {c.record_id: c for c in decision.shown}
    chosen = shown.get(decision.chosen_record_id or "")
    return AppliedDecision(
        decision_id=decision.decision_id,
        task_id=decision.task_id,
        member_key=decision.member_key,
        sequence=decision.sequence,
        outcome=decision.outcome,
        chosen_nik=decision.chosen_record_id,
        probability=chosen.probability if chosen else None,
        match_weight=chosen.match_weight if chosen else None,
        identity=identity,
        revokes=decision.revokes_decision_id,
        reviewer_id=decision.reviewer_id,
        held=held,
    )


def effective(log: Sequence[AppliedDecision]) -> StickyDecision | None:
    """The member's human decision after a task's decisions (in sequence order); None: the engine's."""
    after: list[StickyDecision | None] = []
    for entry in log:
        if entry.outcome in (ReviewOutcome.ACCEPT, ReviewOutcome.NEW_PERSON) and not entry.held:
            after.append(
                StickyDecision(
                    entry.decision_id,
                    entry.task_id,
                    entry.outcome,
                    entry.chosen_nik,
                    entry.probability,
                    entry.match_weight,
                    entry.identity,
                )
            )
        elif entry.outcome is ReviewOutcome.UNDO:
            # undo reverts the latest decision (judge checked it): the state before that one
            after.append(after[-2] if len(after) >= 2 else None)
        else:
            after.append(after[-1] if after else None)
    return after[-1] if after else None


def override_link(link: MemberLink, sticky: StickyDecision | None, query: MemberQuery) -> MemberLink:
    """The engine's `link` with the human decision applied, if it still holds for the member's data."""
    if sticky is None or sticky.identity != identity_of(query):
        return link
    if sticky.outcome is ReviewOutcome.NEW_PERSON:
        return replace(
            link,
            band="no_match",
            master_nik=None,
            master_kk_number=None,
            master_deceased=False,
            dtks_id=None,
            bpjs_id=None,
            dtks_decile=None,
            candidates=(),
        )
    if sticky.chosen_nik == link.master_nik:
        return replace(link, band="clerical_link", candidates=())
    # Another candidate than the engine's best: its scores as shown to the reviewer; the engine's master
    # facts (KK, death, sectoral ids) belong to its own candidate, so they are not carried over.
    ranked = {c.master_nik: c for c in link.candidates}
    chosen = ranked.get(sticky.chosen_nik or "")
    return replace(
        link,
        band="clerical_link",
        master_nik=sticky.chosen_nik,
        probability=chosen.probability if chosen else sticky.probability,
        match_weight=chosen.match_weight if chosen else sticky.match_weight,
        explanation=dict(chosen.explanation) if chosen else {},
        master_kk_number=None,
        master_deceased=False,
        dtks_id=None,
        bpjs_id=None,
        dtks_decile=None,
        candidates=(),
    )
