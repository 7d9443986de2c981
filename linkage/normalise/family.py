"""Family context: resolve members of one submitted family against each other.

Within one family submission, two members cannot be the same master person. When a member's NIK
belongs to a relative, or father and son share a name, the scores alone can send two members to one
master record. The tie-break assigns the family's candidate pairs greedily by match weight: the
strongest pair is fixed first, and a master record taken by one member is no longer available to the
other members of the same submission, which then fall back to their next-best candidate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A scored candidate pair (record -> master record)."""

    record_id: str
    master_record_id: str
    match_weight: float
    match_probability: float


@dataclass(frozen=True)
class Choice:
    """The chosen master record of one record and the runner-up's weight (None: no other candidate)."""

    candidate: Candidate | None
    runner_up_weight: float | None


def choose_best(
    candidates: Iterable[Candidate], group_of: Mapping[str, str] | None = None
) -> dict[str, Choice]:
    """Best candidate per record, one-to-one inside each group (a family submission).

    `group_of` maps a record id to its group; records without a group are resolved alone. Records that
    lose every candidate to relatives get `Choice(None, best_weight)`.
    """
    by_group: dict[str, list[Candidate]] = defaultdict(list)
    by_record: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        group = group_of.get(c.record_id) if group_of is not None else None
        by_group[group if group is not None else "\0" + c.record_id].append(c)
        by_record[c.record_id].append(c)
    chosen: dict[str, Candidate] = {}
    for pairs in by_group.values():
        taken: set[str] = set()
        # Ties in weight are broken by ids so the result does not depend on input order.
        for c in sorted(pairs, key=lambda p: (-p.match_weight, p.record_id, p.master_record_id)):
            if c.record_id in chosen or c.master_record_id in taken:
                continue
            chosen[c.record_id] = c
            taken.add(c.master_record_id)
    result: dict[str, Choice] = {}
    for record_id, pairs in by_record.items():
        best = chosen.get(record_id)
        others = [p.match_weight for p in pairs if p is not best]
        result[record_id] = Choice(best, max(others) if others else None)
    return result
