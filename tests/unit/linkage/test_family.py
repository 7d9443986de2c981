"""Family tie-break: one master record per member inside a submission."""

from __future__ import annotations

from linkage.normalise.family import Candidate, choose_best


def test_father_and_son_with_the_same_name_get_different_master_records() -> None:
    # Both members score highest against the father's master record (same name, same KK); the son's
    # own record scores a little lower for both. Without the family, both would take the father.
    pairs = [
        Candidate("sub1/1", "FATHER", 40.0, 0.99999),
        Candidate("sub1/1", "SON", 20.0, 0.999),
        Candidate("sub1/3", "FATHER", 30.0, 0.9999),
        Candidate("sub1/3", "SON", 28.0, 0.9998),
    ]
    groups = {"sub1/1": "sub1", "sub1/3": "sub1"}
    choices = choose_best(pairs, groups)
    assert choices["sub1/1"].candidate == pairs[0]
    assert choices["sub1/3"].candidate == pairs[3]
    assert choices["sub1/3"].runner_up_weight == 30.0
    # Without family context each record simply takes its best candidate.
    alone = choose_best(pairs)
    assert alone["sub1/3"].candidate == pairs[2]


def test_member_whose_only_candidate_is_taken_by_a_relative_gets_none() -> None:
    pairs = [Candidate("s/1", "M1", 35.0, 0.9999), Candidate("s/2", "M1", 12.0, 0.9)]
    choices = choose_best(pairs, {"s/1": "s", "s/2": "s"})
    assert choices["s/1"].candidate == pairs[0]
    assert choices["s/2"].candidate is None
    assert choices["s/2"].runner_up_weight == 12.0


def test_different_submissions_may_share_a_master_record() -> None:
    # A duplicate enumeration is the same person twice: both links are right.
    pairs = [Candidate("a/1", "M1", 35.0, 0.9999), Candidate("b/1", "M1", 34.0, 0.9999)]
    choices = choose_best(pairs, {"a/1": "a", "b/1": "b"})
    assert choices["a/1"].candidate == pairs[0]
    assert choices["b/1"].candidate == pairs[1]
