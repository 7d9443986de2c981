"""Labelled pairs from clerical review decisions (pure: no I/O; the CLI reads the topic and writes the file).

A decision on `linkage.review.decisions.v1` says, for one survey member, which of the candidates on the
reviewer's screen is the same person. Read as labels (docs/review.md, "Labels"):

- `accept` of candidate C: the pair (member, C) is labelled 1 and every other shown candidate 0;
- `new_person`: every shown candidate is labelled 0;
- `skip`: no label;
- `undo`: revokes the decision it names (that decision gives no label; the task's earlier effective
  decision, if any, counts again);
- second review: a decision on a second-review task `<task id>/second-<decision id>` belongs to the
  chain of its base task. The chain's label comes from its latest effective decision; when that is a
  second reviewer's decision that disagrees with the held decision it answers (another outcome or
  candidate) and neither of them is a supervisor's, the reviewers disagree and the task gives no label
  (counted as `disagreed`). A supervisor's decision always counts.
- a member reviewed on several tasks (revisions, master changes): the labels of its latest labelled
  task (the last one in topic order, which is the member's order: the topic is keyed by member key).

A decision whose id was seen already (a re-delivery) is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome

#: Columns of a labels file, in order (docs/review.md, "Labels").
LABEL_COLUMNS: tuple[str, ...] = ("record_id", "master_record_id", "label", "decision_id", "task_id", "reviewer_role")
_SECOND = "/second-"


@dataclass(frozen=True, order=True)
class LabelledPair:
    """One labelled (survey record, master record) pair."""

    #: The survey record: its member key (what the decisions carry).
    record_id: str
    #: The master record id (NIK) of the candidate.
    master_record_id: str
    #: 1: the same person; 0: not the same person.
    label: int
    #: The decision the label comes from, its task and the decider's role.
    decision_id: str
    task_id: str
    reviewer_role: str


@dataclass
class LabelStats:
    """What the derivation read and what it made of it."""

    decisions: int = 0
    duplicates: int = 0
    skips: int = 0
    undos: int = 0
    disagreed: int = 0
    tasks_labelled: int = 0
    members: int = 0
    positives: int = 0
    negatives: int = 0
    unresolved_undos: int = 0
    #: decisions on a second-review task whose held decision was undone (the linker refuses them)
    orphaned: int = 0
    notes: list[str] = field(default_factory=list)


def base_task(task_id: str) -> str:
    """The task a second-review task answers (`<task id>/second-<decision id>` -> `<task id>`)."""
    return task_id.split(_SECOND, 1)[0]


def held_decision_of(task_id: str) -> str | None:
    """The decision a second-review task was raised for, or None for an ordinary task."""
    return task_id.split(_SECOND, 1)[1].split("/", 1)[0] if _SECOND in task_id else None


def _agree(a: ReviewDecision, b: ReviewDecision) -> bool:
    return a.outcome is b.outcome and a.chosen_record_id == b.chosen_record_id


def _pairs(decision: ReviewDecision) -> list[LabelledPair]:
    chosen = decision.chosen_record_id if decision.outcome is ReviewOutcome.ACCEPT else None
    seen: dict[str, int] = {}
    for candidate in decision.shown:
        seen[candidate.record_id] = int(candidate.record_id == chosen)
    return [
        LabelledPair(
            decision.member_key, nik, label, decision.decision_id, decision.task_id, decision.reviewer_role.value
        )
        for nik, label in sorted(seen.items())
    ]


def derive_labels(decisions: Iterable[ReviewDecision]) -> tuple[list[LabelledPair], LabelStats]:
    """Labelled pairs of `decisions` (in topic order per member), sorted by record and master id."""
    stats = LabelStats()
    by_id: dict[str, ReviewDecision] = {}
    # per base task: its effective decisions in order (undo removes one); the order tasks were last touched
    chains: dict[str, list[ReviewDecision]] = {}
    touched: dict[str, int] = {}
    revoked: set[str] = set()
    for n, decision in enumerate(decisions):
        stats.decisions += 1
        if decision.decision_id in by_id:
            stats.duplicates += 1
            continue
        by_id[decision.decision_id] = decision
        chain = chains.setdefault(base_task(decision.task_id), [])
        if decision.outcome is ReviewOutcome.SKIP:
            stats.skips += 1
            continue
        if decision.outcome is ReviewOutcome.UNDO:
            stats.undos += 1
            revoked.add(str(decision.revokes_decision_id))
            kept = [d for d in chain if d.decision_id != decision.revokes_decision_id]
            if len(kept) == len(chain):
                stats.unresolved_undos += 1
            chain[:] = kept
        elif held_decision_of(decision.task_id) in revoked:
            stats.orphaned += 1
            continue
        else:
            chain.append(decision)
        touched[base_task(decision.task_id)] = n
    latest_task_of: dict[str, tuple[int, list[LabelledPair]]] = {}
    for task_id, chain in chains.items():
        if not chain:
            continue
        last = chain[-1]
        held_id = held_decision_of(last.task_id)
        held = by_id.get(held_id) if held_id else None
        if (
            held is not None
            and not _agree(held, last)
            and ReviewerRole.SUPERVISOR not in (held.reviewer_role, last.reviewer_role)
        ):
            stats.disagreed += 1
            continue
        stats.tasks_labelled += 1
        order = touched[task_id]
        member = last.member_key
        if member not in latest_task_of or latest_task_of[member][0] < order:
            latest_task_of[member] = (order, _pairs(last))
    pairs = sorted(p for _, labelled in latest_task_of.values() for p in labelled)
    stats.members = len(latest_task_of)
    stats.positives = sum(p.label for p in pairs)
    stats.negatives = len(pairs) - stats.positives
    return pairs, stats
