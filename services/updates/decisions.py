"""Applying clerical review decisions to the links (pure w.r.t. Kafka; the store is only read here).

Per decision record of `linkage.review.decisions.v1`, in order: decode it (a bad record becomes a dead
letter with the contract's reason), find the member in the link store, judge it against the decisions
its task already has (`services/updates/clerical.py`: unknown member or task, stale task or sequence,
an undo that revokes something else -> dead letter; an id applied already -> dropped), and re-link the
member with the engine under the member's new effective human decision. The member record, a review
task if the member is back in review (after an undo), the family record and the update events (cause
`{"source": "review", "change": "clerical", "change_id": <decision id>}`) come out as for a master
change (`ChangeApplier`). The caller produces `records`, waits for every acknowledgement, and only then
saves `entries` and `states` (`LinkStore.apply_decisions`) and commits the decisions' offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.decode import ContractViolation, decode
from contracts.linkage_outputs import to_canonical_json
from contracts.linkage_updates import ChangeSource, UpdateCause
from contracts.review_decisions import REVIEW_DECISION_ADAPTER, ReviewDecision
from services.linker.deadletter import SourcePosition, bounded_dead_letter
from services.linker.ids import PersonIds
from services.linker.pipeline import OutboundRecord
from services.updates.applier import ChangeApplier, LinkingMaster, MemberIndex, UpdateResult, UpdateTopics
from services.updates.changes import Change
from services.updates.clerical import (
    AppliedDecision,
    DecisionReason,
    Verdict,
    applied,
    effective,
    identity_of,
    judge,
    override_link,
)
from services.updates.member_state import MemberState

#: The decisions applied so far to a member (the link store's `decisions_of`).
DecisionLog = Callable[[str], Sequence[AppliedDecision]]


@dataclass(frozen=True)
class DecisionRecord:
    """One record of the decisions topic (`timestamp` in seconds)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None


@dataclass
class DecisionResult:
    """What a batch of decisions produces and, after the acknowledgements, stores."""

    records: list[OutboundRecord] = field(default_factory=list)
    entries: list[AppliedDecision] = field(default_factory=list)
    states: dict[str, MemberState] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)  # reason -> count
    duplicates: int = 0
    elsewhere: int = 0  # members of files other instances own
    applied: int = 0
    events: int = 0


def clerical_cause(decision: ReviewDecision) -> UpdateCause:
    """The update cause of a decision: source review, change clerical, the decision's id."""
    return UpdateCause(source=ChangeSource.REVIEW, change="clerical", change_id=decision.decision_id)


class DecisionApplier:
    """Turns review decisions into link changes (records to produce, states and log entries to save)."""

    def __init__(
        self, linker: LinkingMaster, index: MemberIndex, decisions_of: DecisionLog, ids: PersonIds,
        topics: UpdateTopics, dlq_topic: str, *, max_bytes: int = 1_048_576, unknown_is_elsewhere: bool = False,
    ) -> None:  # fmt: skip
        self._linker = linker
        self._index = index
        self._decisions_of = decisions_of
        self._applier = ChangeApplier(linker, index, ids, topics)
        self._dlq = dlq_topic
        self._max_bytes = max_bytes
        # Several instances: a member no file of this one holds belongs to another instance's files.
        self._elsewhere = unknown_is_elsewhere

    def process(self, records: Sequence[DecisionRecord]) -> DecisionResult:
        """Judge and apply `records` in order; later decisions of the batch see the earlier ones."""
        result = DecisionResult()
        relinked = UpdateResult()
        for record in records:
            source = SourcePosition(record.topic, record.partition, record.offset, record.timestamp)
            try:
                decision = decode(REVIEW_DECISION_ADAPTER, record.value, max_bytes=self._max_bytes)
                if record.key is None or record.key != decision.member_key.encode():
                    raise ContractViolation(DeadLetterReason.KEY_MISMATCH, "the record key is not the member key")
            except ContractViolation as violation:
                self._dead(result, bounded_dead_letter(violation, record.value, record.key, source), record)
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
                reason = DeadLetterReason(verdict.value if isinstance(verdict, DecisionReason) else "unknown_member")
                detail = f"review decision {decision.decision_id} not applied: {reason.value}"
                letter = bounded_dead_letter(ContractViolation(reason, detail), record.value, record.key, source)
                self._dead(result, letter, record)
                continue
            entry = applied(decision, identity_of(state.query))
            result.entries.append(entry)
            result.applied += 1
            sticky = effective([*task, entry])
            (link,) = self._linker.link([state.query])
            events_before = relinked.events
            self._applier.relink_one(Change(clerical_cause(decision)), state, override_link(link, sticky, state.query),
                                     relinked)  # fmt: skip
            result.events += relinked.events - events_before
        self._applier.rebuild_families(relinked)
        result.records.extend(relinked.records)
        result.states = relinked.states
        return result

    def _stored(self, member_key: str) -> MemberState | None:
        found = self._index.find_families([member_key[:22]])
        return next((s for s in found if s.member_key == member_key), None)

    def _dead(self, result: DecisionResult, letter: DeadLetter, record: DecisionRecord) -> None:
        result.records.append(OutboundRecord(self._dlq, record.key, to_canonical_json(letter)))
        result.dead[letter.reason.value] = result.dead.get(letter.reason.value, 0) + 1
