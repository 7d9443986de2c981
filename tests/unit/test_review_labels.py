"""Labelled pairs derived from review decisions (`services.review.labels.derive_labels`), exact rows."""

from __future__ import annotations

from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome
from services.review.labels import LabelledPair, base_task, derive_labels, held_decision_of
from tests.support.review_decisions import KEY, KEY2, T1, A, B, C, decision


def pair(nik: str, label: int, d: ReviewDecision) -> LabelledPair:
    return LabelledPair(d.member_key, nik, label, d.decision_id, d.task_id, d.reviewer_role.value)


def test_accept_labels_the_chosen_pair_1_and_the_other_shown_0() -> None:
    d = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=B)
    pairs, stats = derive_labels([d])
    assert pairs == sorted([pair(A, 0, d), pair(B, 1, d), pair(C, 0, d)])
    assert (stats.positives, stats.negatives, stats.members, stats.tasks_labelled) == (1, 2, 1, 1)


def test_new_person_labels_every_shown_candidate_0() -> None:
    d = decision(T1, 0, ReviewOutcome.NEW_PERSON, shown=(C, A))
    pairs, stats = derive_labels([d])
    assert pairs == sorted([pair(A, 0, d), pair(C, 0, d)])
    assert (stats.positives, stats.negatives) == (0, 2)


def test_skip_gives_no_label_and_a_later_accept_counts() -> None:
    skip = decision(T1, 0, ReviewOutcome.SKIP)
    accept = decision(T1, 1, ReviewOutcome.ACCEPT, chosen=A, reviewer="sari")
    assert derive_labels([skip]) == ([], derive_labels([skip])[1])
    pairs, stats = derive_labels([skip, accept])
    assert pairs == sorted([pair(A, 1, accept), pair(B, 0, accept), pair(C, 0, accept)])
    assert stats.skips == 1


def test_undo_revokes_the_decision_it_names_and_the_next_decision_counts() -> None:
    accept = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=A)
    undo = decision(T1, 1, ReviewOutcome.UNDO, revokes=accept.decision_id)
    assert derive_labels([accept, undo])[0] == []
    new = decision(T1, 2, ReviewOutcome.NEW_PERSON)
    pairs, stats = derive_labels([accept, undo, new])
    assert pairs == sorted([pair(A, 0, new), pair(B, 0, new), pair(C, 0, new)])
    assert (stats.undos, stats.unresolved_undos) == (1, 0)


def test_a_redelivered_decision_is_counted_once() -> None:
    d = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=C)
    pairs, stats = derive_labels([d, d])
    assert pairs == sorted([pair(A, 0, d), pair(B, 0, d), pair(C, 1, d)])
    assert (stats.decisions, stats.duplicates) == (2, 1)


def test_an_agreeing_second_review_labels_once_with_the_second_decision() -> None:
    first = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=B)
    second_task = f"{T1}/second-{first.decision_id}"
    assert (base_task(second_task), held_decision_of(second_task)) == (T1, first.decision_id)
    second = decision(second_task, 0, ReviewOutcome.ACCEPT, chosen=B, reviewer="sari")
    pairs, stats = derive_labels([first, second])
    assert pairs == sorted([pair(A, 0, second), pair(B, 1, second), pair(C, 0, second)])
    assert (stats.tasks_labelled, stats.disagreed) == (1, 0)


def test_disagreeing_reviewers_give_no_label_unless_a_supervisor_decides() -> None:
    first = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=B)
    second_task = f"{T1}/second-{first.decision_id}"
    other = decision(second_task, 0, ReviewOutcome.NEW_PERSON, reviewer="sari")
    pairs, stats = derive_labels([first, other])
    assert pairs == []
    assert stats.disagreed == 1
    boss = decision(second_task, 0, ReviewOutcome.NEW_PERSON, reviewer="boss", role=ReviewerRole.SUPERVISOR)
    pairs, stats = derive_labels([first, boss])
    assert pairs == sorted([pair(A, 0, boss), pair(B, 0, boss), pair(C, 0, boss)])
    assert pairs[0].reviewer_role == "supervisor"


def test_a_second_review_of_an_undone_decision_is_ignored() -> None:
    first = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=B)
    undo = decision(T1, 1, ReviewOutcome.UNDO, revokes=first.decision_id)
    late = decision(f"{T1}/second-{first.decision_id}", 0, ReviewOutcome.ACCEPT, chosen=B, reviewer="sari")
    pairs, stats = derive_labels([first, undo, late])
    assert pairs == []
    assert stats.orphaned == 1


def test_the_latest_labelled_task_of_a_member_wins_and_members_are_kept_apart() -> None:
    old = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=A)
    newer = decision(f"{KEY}/r2", 0, ReviewOutcome.ACCEPT, chosen=C, shown=(C, B))
    other = decision(f"{KEY2}/r1", 0, ReviewOutcome.ACCEPT, chosen=A, shown=(A,), member_key=KEY2)
    pairs, stats = derive_labels([old, newer, other])
    assert pairs == sorted([pair(B, 0, newer), pair(C, 1, newer), pair(A, 1, other)])
    assert (stats.members, stats.tasks_labelled, stats.positives, stats.negatives) == (2, 3, 2, 1)
