"""Applying clerical review decisions to the links (pure w.r.t. Kafka; the store is only read here).

Per decision record of `linkage.review.decisions.v1`, in order: decode it (a bad record becomes a dead
letter with the contract's reason), find the member in the link store, judge it against the decisions
its task already has (`integration/clerical.py`: unknown member or task, stale task or sequence,
an undo that revokes something else -> dead letter; an id applied already -> dropped), and re-link the
member with the engine under the member's new effective human decision. The member record, a review
task if the member is back in review (after an undo), the family record and the update events (cause
`{"source": "review", "change": "clerical", "change_id": <decision id>}`) come out as for a master
change (`ChangeApplier`). The caller produces `records`, waits for every acknowledgement, and only then
saves `entries` and `states` (`LinkStore.apply_decisions`) and commits the decisions' offsets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.decode import MAX_PAYLOAD_BYTES, ContractViolation, decode
from contracts.linkage_outputs import LinkedMember, ReviewTask, to_canonical_json
from contracts.linkage_updates import ChangeSource, UpdateCause
from contracts.review_decisions import REVIEW_DECISION_ADAPTER, ReviewDecision, ReviewerRole, ReviewOutcome
from integration.clerical import (
    SECOND_REVIEW_MARK,
    AppliedDecision,
    DecisionReason,
    SecondReview,
    Verdict,
    applied,
    effective,
    held_decision,
    identity_of,
    judge,
    override_link,
    second_opinion,
    second_review_task,
)
from integration.ids import PersonIds
from integration.outputs import review_task
from integration.port import MemberLink
from services.kafka.record import KafkaRecord
from services.linker.deadletter import bounded_dead_letter
from services.linker.member_state import MemberState
from services.linker.pipeline import OutboundRecord
from services.linker.updates.applier import ChangeApplier, LinkingMaster, MemberIndex, UpdateResult, UpdateTopics
from services.linker.updates.changes import Change

#: The decisions applied so far to a member (the link store's `decisions_of`).
DecisionLog = Callable[[str], Sequence[AppliedDecision]]


@dataclass
class DecisionResult:
    """What a batch of decisions produces and, after the acknowledgements, stores."""

    records: list[OutboundRecord] = field(default_factory=list)
    entries: list[AppliedDecision] = field(default_factory=list)
    states: dict[str, MemberState] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)  # reason -> count
    duplicates: int = 0
    held: int = 0  # waiting for a second reviewer
    partitions: dict[str, int] = field(default_factory=dict)  # member key -> its link-store file
    elsewhere: int = 0  # members of files other instances own
    applied: int = 0
    events: int = 0


def clerical_cause(decision: ReviewDecision) -> UpdateCause:
    """The update cause of a decision: source review, change clerical, the decision's id."""
    return UpdateCause(source=ChangeSource.REVIEW, change="clerical", change_id=decision.decision_id)


class DecisionApplier:
    """Turns review decisions into link changes (records to produce, states and log entries to save)."""

    def __init__(
        self,
        linker: LinkingMaster,
        index: MemberIndex,
        decisions_of: DecisionLog,
        ids: PersonIds,
        topics: UpdateTopics,
        dlq_topic: str,
        *,
        max_bytes: int = MAX_PAYLOAD_BYTES,
        unknown_is_elsewhere: bool = False,
        second_review: SecondReview | None = None,
    ) -> None:
        self._linker = linker
        self._index = index
        self._decisions_of = decisions_of
        self._applier = ChangeApplier(linker, index, ids, topics)
        self._dlq = dlq_topic
        self._max_bytes = max_bytes
        # Several instances: a member no file of this one holds belongs to another instance's files.
        self._elsewhere = unknown_is_elsewhere
        self._second = second_review or SecondReview()
        self._topics = topics
        self._ids = ids

    def process(self, records: Sequence[KafkaRecord]) -> DecisionResult:
        """Judge and apply `records` in order; later decisions of the batch see the earlier ones."""
        result = DecisionResult()
        relinked = UpdateResult()
        for record in records:
            try:
                decision = decode(REVIEW_DECISION_ADAPTER, record.value, max_bytes=self._max_bytes)
                if record.key is None or record.key != decision.member_key.encode():
                    raise ContractViolation(DeadLetterReason.KEY_MISMATCH, "the record key is not the member key")
            except ContractViolation as violation:
                self._dead(result, bounded_dead_letter(violation, record.value, record.key, record), record)
                continue
            state = relinked.states.get(decision.member_key) or self._stored(decision.member_key)
            if state is None and self._elsewhere:
                result.elsewhere += 1
                continue
            log = [*self._decisions_of(decision.member_key), *result.entries]
            task = sorted((d for d in log if d.task_id == decision.task_id), key=lambda d: d.sequence)
            verdict = judge(decision, state.revision if state else None, task)
            if verdict is Verdict.DUPLICATE:
                result.duplicates += 1
                continue
            if isinstance(verdict, DecisionReason) or state is None:
                reason = verdict if isinstance(verdict, DecisionReason) else DecisionReason.UNKNOWN_MEMBER
                self._refuse(result, reason, decision, record)
                continue
            (link,) = self._linker.link([state.query])
            hold = self._hold(decision, link, log)
            if isinstance(hold, DecisionReason):
                self._refuse(result, hold, decision, record)
                continue
            entry = applied(decision, identity_of(state.query), held=hold)
            result.entries.append(entry)
            result.partitions[decision.member_key] = state.partition
            if hold:
                # not applied: the member stays as it is and a second reviewer gets a task
                result.held += 1
                decided = decision.decided_at.astimezone(dt.UTC)
                task_json = to_canonical_json(self._second_review(state, link, entry, decided))
                result.records.append(
                    OutboundRecord(self._topics.review, decision.member_key.encode(), task_json, decided)
                )
                continue
            result.applied += 1
            sticky = effective([*task, entry])
            events_before = relinked.events
            change = Change(clerical_cause(decision), time=decision.decided_at)
            self._applier.relink_one(change, state, override_link(link, sticky, state.query), relinked)
            result.events += relinked.events - events_before
        self._applier.rebuild_families(relinked)
        result.records.extend(relinked.records)
        result.states = relinked.states
        return result

    def _hold(
        self, decision: ReviewDecision, link: MemberLink, log: Sequence[AppliedDecision]
    ) -> bool | DecisionReason:
        """Whether the decision waits for a second reviewer (the second-reviewer rule)."""
        if SECOND_REVIEW_MARK in decision.task_id:
            first = held_decision(decision.task_id, log)
            if first is None:
                return DecisionReason.UNKNOWN_TASK
            if decision.outcome not in (ReviewOutcome.ACCEPT, ReviewOutcome.NEW_PERSON):
                return False  # skip / undo on the second-review task: as on any task
            opinion = second_opinion(decision, first)
            if isinstance(opinion, DecisionReason):
                return opinion
            return not opinion and decision.reviewer_role is not ReviewerRole.SUPERVISOR
        return self._second.needed(decision, link.master_nik, link.probability)

    def _second_review(
        self, state: MemberState, link: MemberLink, held: AppliedDecision, time: dt.datetime
    ) -> ReviewTask:
        member = LinkedMember.model_validate_json(state.member_json)
        return review_task(
            second_review_task(held),
            member.member_key,
            member.submission_id,
            member.revision,
            link,
            self._ids,
            self._linker.model_version,
            time,
        )

    def _refuse(
        self,
        result: DecisionResult,
        reason: DecisionReason,
        decision: ReviewDecision,
        record: KafkaRecord,
    ) -> None:
        why = DeadLetterReason(reason.value)
        detail = f"review decision {decision.decision_id} not applied: {why.value}"
        letter = bounded_dead_letter(ContractViolation(why, detail), record.value, record.key, record)
        self._dead(result, letter, record)

    def _stored(self, member_key: str) -> MemberState | None:
        found = self._index.find_families([member_key[:22]])
        return next((s for s in found if s.member_key == member_key), None)

    def _dead(self, result: DecisionResult, letter: DeadLetter, record: KafkaRecord) -> None:
        result.records.append(OutboundRecord(self._dlq, record.key, to_canonical_json(letter), letter.dead_lettered_at))
        result.dead[letter.reason.value] = result.dead.get(letter.reason.value, 0) + 1
