"""The decision rules of clerical review (integration/clerical.py): pure functions, exact results."""

from __future__ import annotations

import datetime as dt
import hashlib

from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome, ShownCandidate, decision_id_of
from integration.clerical import (
    DecisionReason,
    StickyDecision,
    Verdict,
    applied,
    effective,
    identity_of,
    judge,
    override_link,
    task_revision,
)
from integration.port import MemberLink, MemberQuery, RankedCandidate
from tests.support.linker import FAMILY_KEY, nik_for

KEY = f"{FAMILY_KEY}-02"
TASK = f"{KEY}/r3"
ENGINE_NIK, OTHER_NIK = nik_for(3, female=True), nik_for(7, female=True)
SHOWN = [
    ShownCandidate(rank=1, record_id=ENGINE_NIK, person_id="p-1", probability=0.6, match_weight=1.25),
    ShownCandidate(rank=2, record_id=OTHER_NIK, person_id="p-2", probability=0.3, match_weight=-1.5),
]
QUERY = MemberQuery(KEY, ENGINE_NIK, None, "Sity Aminah", "F", "1980-05-15", 1980, 42, 2022, None, None, FAMILY_KEY, "")


def _decision(
    seq: int,
    outcome: ReviewOutcome,
    chosen: str | None = None,
    revokes: str | None = None,
    task: str = TASK,
    revision: int = 3,
) -> ReviewDecision:
    return ReviewDecision(
        decision_id=decision_id_of(task, seq),
        task_id=task,
        member_key=KEY,
        revision=revision,
        sequence=seq,
        outcome=outcome,
        chosen_record_id=chosen,
        revokes_decision_id=revokes,
        reviewer_id="rina",
        reviewer_role=ReviewerRole.REVIEWER,
        decided_at=dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC),
        shown=SHOWN,
        model_version="m-1",
    )


def _link() -> MemberLink:
    return MemberLink(
        KEY,
        "review",
        ENGINE_NIK,
        0.6,
        1.25,
        -3.0,
        {"nik": 10.0, "full_name": -8.75},
        master_kk_number="K",
        dtks_id="D-1",
        dtks_decile=2,
        candidates=(
            RankedCandidate(ENGINE_NIK, 0.6, 1.25, {"nik": 10.0}),
            RankedCandidate(OTHER_NIK, 0.3, -1.5, {"nik": -10.0, "full_name": 8.5}),
        ),
    )


def test_task_revision_reads_both_task_id_forms_and_refuses_others() -> None:
    assert task_revision(TASK, KEY) == 3
    assert task_revision(f"{KEY}/r12/change-9", KEY) == 12
    assert task_revision(f"{FAMILY_KEY}-03/r3", KEY) is None
    assert task_revision(f"{KEY}/rx", KEY) is None


def test_judge_applies_in_sequence_and_dead_letters_with_a_reason() -> None:
    identity = identity_of(QUERY)
    accept = _decision(0, ReviewOutcome.ACCEPT, OTHER_NIK)
    assert judge(accept, 3, []) is Verdict.APPLY
    assert judge(accept, None, []) is DecisionReason.UNKNOWN_MEMBER
    assert judge(accept, 2, []) is DecisionReason.UNKNOWN_TASK  # a revision the linker never saw
    assert judge(_decision(0, ReviewOutcome.SKIP, task=f"{KEY}/r4"), 3, []) is DecisionReason.UNKNOWN_TASK
    assert judge(accept, 4, []) is DecisionReason.STALE_TASK  # a newer revision replaced the task
    log = [applied(accept, identity)]
    assert judge(accept, 3, log) is Verdict.DUPLICATE
    assert judge(_decision(2, ReviewOutcome.NEW_PERSON), 3, log) is DecisionReason.STALE_SEQUENCE
    assert judge(_decision(1, ReviewOutcome.UNDO, revokes=decision_id_of(TASK, 7)), 3, log) is (
        DecisionReason.UNDO_MISMATCH
    )
    undo = _decision(1, ReviewOutcome.UNDO, revokes=accept.decision_id)
    assert judge(undo, 3, log) is Verdict.APPLY
    # an undo cannot itself be undone (the app only undoes a decision)
    again = _decision(2, ReviewOutcome.UNDO, revokes=undo.decision_id)
    assert judge(again, 3, [*log, applied(undo, identity)]) is DecisionReason.UNDO_MISMATCH


def test_effective_replays_accept_skip_undo_and_new_person() -> None:
    identity = identity_of(QUERY)
    accept = applied(_decision(0, ReviewOutcome.ACCEPT, OTHER_NIK), identity)
    skip = applied(_decision(1, ReviewOutcome.SKIP), identity)
    undo_skip = applied(_decision(2, ReviewOutcome.UNDO, revokes=skip.decision_id), identity)
    new = applied(_decision(3, ReviewOutcome.NEW_PERSON), identity)
    undo_new = applied(_decision(4, ReviewOutcome.UNDO, revokes=new.decision_id), identity)
    chosen = StickyDecision(accept.decision_id, TASK, ReviewOutcome.ACCEPT, OTHER_NIK, 0.3, -1.5, identity)
    assert effective([]) is None
    assert effective([accept]) == chosen
    assert effective([accept, skip]) == chosen
    assert effective([accept, skip, undo_skip]) == chosen
    assert effective([accept, skip, undo_skip, new]) == StickyDecision(
        new.decision_id, TASK, ReviewOutcome.NEW_PERSON, None, None, None, identity
    )
    assert effective([accept, skip, undo_skip, new, undo_new]) == chosen
    undo_accept = applied(_decision(1, ReviewOutcome.UNDO, revokes=accept.decision_id), identity)
    assert effective([accept, undo_accept]) is None


def test_override_link_applies_the_decision_only_to_the_same_member_data() -> None:
    identity, link = identity_of(QUERY), _link()
    other = StickyDecision("a" * 32, TASK, ReviewOutcome.ACCEPT, OTHER_NIK, 0.3, -1.5, identity)
    got = override_link(link, other, QUERY)
    assert (got.band, got.master_nik, got.probability, got.match_weight, got.explanation) == (
        "clerical_link",
        OTHER_NIK,
        0.3,
        -1.5,
        {"nik": -10.0, "full_name": 8.5},
    )
    # the engine's master facts were its own candidate's: not carried over to another person
    assert (got.master_kk_number, got.dtks_id, got.dtks_decile, got.candidates) == (None, None, None, ())
    same = override_link(
        link, StickyDecision("b" * 32, TASK, ReviewOutcome.ACCEPT, ENGINE_NIK, 0.6, 1.25, identity), QUERY
    )
    assert (same.band, same.master_nik, same.master_kk_number, same.dtks_decile) == (
        "clerical_link",
        ENGINE_NIK,
        "K",
        2,
    )
    none = override_link(
        link, StickyDecision("c" * 32, TASK, ReviewOutcome.NEW_PERSON, None, None, None, identity), QUERY
    )
    assert (none.band, none.master_nik, none.dtks_id, none.probability) == ("no_match", None, None, 0.6)
    changed = MemberQuery(**{**QUERY.__dict__, "full_name": "Siti Rahma"})
    assert override_link(link, other, changed) is link
    assert override_link(link, None, QUERY) is link


def test_the_second_reviewer_rule_and_second_opinions() -> None:
    from contracts.review_decisions import ReviewerRole as Role
    from integration.clerical import SecondReview, held_decision, second_opinion, second_review_task

    accept_other, accept_engine = (
        _decision(0, ReviewOutcome.ACCEPT, OTHER_NIK),
        _decision(0, ReviewOutcome.ACCEPT, ENGINE_NIK),
    )
    new, skip = _decision(0, ReviewOutcome.NEW_PERSON), _decision(0, ReviewOutcome.SKIP)
    off, district, likely = SecondReview(), SecondReview(frozenset({KEY[:7]})), SecondReview(min_probability=0.5)
    assert [off.needed(d, ENGINE_NIK, 0.9) for d in (accept_other, new, skip)] == [False, False, False]
    assert [district.needed(d, ENGINE_NIK, 0.1) for d in (accept_other, accept_engine, new, skip)] == [
        True,
        True,
        True,
        False,
    ]
    assert [likely.needed(d, ENGINE_NIK, 0.6) for d in (accept_other, accept_engine, new)] == [True, False, True]
    assert [likely.needed(d, ENGINE_NIK, p) for d, p in ((accept_other, 0.49), (new, None))] == [False, False]
    boss = accept_other.model_copy(update={"reviewer_role": Role.SUPERVISOR})
    assert district.needed(boss, ENGINE_NIK, 0.9) is False
    held = applied(accept_other, identity_of(QUERY), held=True)
    task2 = second_review_task(held)
    assert task2 == f"{TASK}/second-{accept_other.decision_id}"
    assert held_decision(task2, [held]) == held
    assert held_decision(TASK, [held]) is None
    undone = applied(_decision(1, ReviewOutcome.UNDO, revokes=held.decision_id), identity_of(QUERY))
    assert held_decision(task2, [held, undone]) is None
    assert effective([held]) is None  # a held decision changes nothing
    agree = accept_other.model_copy(update={"reviewer_id": "budi"})
    assert second_opinion(agree, held) is True
    assert second_opinion(new.model_copy(update={"reviewer_id": "budi"}), held) is False
    assert second_opinion(accept_other, held) is DecisionReason.SAME_REVIEWER
    # a disagreement on the second-review task asks for another review of the member's own task
    disagree = _decision(0, ReviewOutcome.NEW_PERSON, task=task2)
    assert second_review_task(applied(disagree, "x", held=True)) == f"{TASK}/second-{disagree.decision_id}"


def test_identity_digests_an_unknown_field_as_the_empty_string_queries_once_held() -> None:
    # Decisions stored while queries held "" for unknown keep applying now that None is unknown.
    unknown = MemberQuery(KEY, None, None, "Sity Aminah", None, None, None, 42, 2022, None, None, FAMILY_KEY, "")
    text = "\x1f".join(["", "Sity Aminah", "", "", "None"])
    assert identity_of(unknown) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
