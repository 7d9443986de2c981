"""The family tie-break of the real-time engine: the batch path's rules (`linkage.normalise.family`).

Members of one submission (`submission_id`) cannot be the same master person, and the head's name
(`head_name` plus the member's `relationship`, against the KK heads of the master's `relationship`
column) orders close candidates. After scoring, the queries of a batch that carry such context are
re-chosen with `choose_best`; every reported weight stays the scored (Splink) weight, only WHICH
candidate wins can change. Queries without context keep the plain highest-weight choice.

A family is only resolved together when all its members are in the same `link` call: callers batch
by family (the linker's `chunk_by_members`; `EngineWorkers` never splits a batch).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from linkage.engine.columns import Growing
from linkage.engine.decisions import match_probability
from linkage.normalise.family import (
    HEAD_BONUS,
    Candidate,
    HeadContext,
    MasterHead,
    MemberHead,
    choose_best,
    kk_heads,
    member_heads,
)

# The query column grouping the members of one family submission.
GROUP_COLUMN = "submission_id"
# Master columns carrying each row's KK head (name key) and whether it is the head, computed over the
# whole master before it is split into shards (`linkage.engine.shard`).
HEAD_KEY_COLUMN = "_kk_head_key"
IS_HEAD_COLUMN = "_kk_is_head"


class MasterFamilies:
    """Per master row: the name key of its KK's head and whether the row is that head.

    Read from the prepared master's `kk_number`, `name_concat` and Dukcapil `relationship` columns;
    without a `relationship` column there is no head evidence. Rows added later by upserts carry none
    either (an update does not say who heads the KK) until the master is loaded again.
    """

    def __init__(self, table: pa.Table) -> None:
        keys: list[str | None] = []
        heads: list[bool] = []
        needed = ("kk_number", "name_concat", "relationship")
        if HEAD_KEY_COLUMN in table.column_names and IS_HEAD_COLUMN in table.column_names:
            # worked out before over the whole master (a shard holds some KKs' rows only)
            keys = table.column(HEAD_KEY_COLUMN).to_pylist()
            heads = [bool(v) for v in table.column(IS_HEAD_COLUMN).to_pylist()]
        elif all(c in table.column_names for c in needed):
            roles = table.column("relationship").to_pylist()
            names = table.column("name_concat").to_pylist()
            keys, heads = kk_heads(table.column("kk_number").to_pylist(), names, roles)
        # object array of shared key strings: one pointer per row, gathered per batch without a loop
        self._keys = Growing(np.array(keys, dtype=object))
        self._heads = Growing(np.array(heads, dtype=np.bool_))

    def __len__(self) -> int:
        return len(self._keys)

    def described(self) -> tuple[list[str | None], list[bool]]:
        """Every row's head key and whether it is the head (the arguments of `extend`)."""
        return list(self._keys.view), self._heads.view.tolist()

    def extend(self, keys: list[str | None], heads: list[bool]) -> None:
        """Describe appended rows (in row order)."""
        added = np.empty(len(keys), dtype=object)
        added[:] = keys
        self._keys.append(added)
        self._heads.append(np.array(heads, dtype=np.bool_))

    def head(self, row: int) -> MasterHead | None:
        """The KK head of a master row, or None when unknown."""
        if row >= len(self._keys):
            return None
        key = self._keys.view[row]
        return None if key is None else MasterHead(str(key), bool(self._heads.view[row]))


@dataclass(frozen=True)
class QueryFamilies:
    """The family context of a query batch: each query's submission and the members' head view."""

    groups: dict[int, str]  # query index -> submission id
    members: dict[str, MemberHead]  # record id -> the member's view of its head

    @classmethod
    def of(cls, batch: pa.Table, id_column: str) -> QueryFamilies | None:
        """The context of a raw query batch; None when no query carries any."""
        if id_column not in batch.column_names:
            return None
        groups: dict[int, str] = {}
        if GROUP_COLUMN in batch.column_names:
            for i, g in enumerate(batch.column(GROUP_COLUMN).to_pylist()):
                if g is not None and str(g) != "":
                    groups[i] = str(g)
        members = member_heads(batch, id_column)
        return cls(groups, members) if groups or members else None


def resolve_families(
    context: QueryFamilies,
    ids: list[str],
    pairs: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
    master_families: MasterFamilies,
    best: npt.NDArray[np.int64],
    runner: npt.NDArray[np.float64],
    ranks: npt.NDArray[np.int64] | None = None,
) -> None:
    """Re-choose `best` (pair index, -1: none) and `runner` (runner-up weight, NaN: none) in place for
    the queries with family context. `pairs` are (query index, master row, total weight) sorted by query.

    A query that loses every candidate to relatives gets no best pair and its best weight as runner-up
    (as `choose_best`). A record id that repeats in the batch is resolved alone (ids key the choice).
    Candidates are named by their zero-padded master row (its `ranks` entry when given), so exact ties
    go to the lowest row as in the engine's plain choice: a query with context but no relative or head
    evidence keeps that choice.
    """
    q, rows, totals = pairs
    wanted = _contested(context, ids, pairs, best, runner)
    if not len(wanted):
        return
    counts = np.bincount(q, minlength=len(ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    candidates: list[Candidate] = []
    pair_of: dict[tuple[str, str], int] = {}
    masters: dict[str, MasterHead] = {}
    for i in wanted.tolist():
        rid = ids[i]
        for p in range(int(starts[i]), int(starts[i] + counts[i])):
            row = int(rows[p])
            mid = f"{row if ranks is None else int(ranks[row]):012d}"
            weight = float(totals[p])
            candidates.append(Candidate(rid, mid, weight, match_probability(weight)))
            pair_of[(rid, mid)] = p
            head = master_families.head(row)
            if head is not None:
                masters[mid] = head
    group_of = {ids[i]: context.groups[i] for i in wanted.tolist() if i in context.groups}
    choices = choose_best(candidates, group_of, HeadContext(context.members, masters))
    for i in wanted.tolist():
        choice = choices.get(ids[i])
        if choice is None:  # no candidate pairs: nothing to re-choose
            continue
        chosen = choice.candidate
        best[i] = -1 if chosen is None else pair_of[(chosen.record_id, chosen.master_record_id)]
        runner[i] = np.nan if choice.runner_up_weight is None else choice.runner_up_weight


def _contested(
    context: QueryFamilies,
    ids: list[str],
    pairs: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
    best: npt.NDArray[np.int64],
    runner: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """The queries whose choice the family context can change, resolved with their whole submission:
    two members of a submission with the same plain best master row, or a member with head context
    whose runner-up is within the head evidence's reach (2 x `HEAD_BONUS` bits) of its best. For all
    other queries `choose_best` returns the plain choice (each member's first pair in the greedy order
    is its own best, which no relative takes), so they are skipped: the greedy pass in Python would
    cost more than scoring a typical batch."""
    n = len(ids)
    q, rows, totals = pairs
    repeated = {rid for rid, k in Counter(ids).items() if k > 1}
    group_code = np.full(n, -1, dtype=np.int64)
    headed = np.zeros(n, dtype=np.bool_)
    codes: dict[str, int] = {}
    for i, rid in enumerate(ids):
        if rid in repeated:
            continue
        group = context.groups.get(i)
        if group is not None:
            group_code[i] = codes.setdefault(group, len(codes))
        headed[i] = rid in context.members
    has = best >= 0
    best_weight = np.full(n, np.nan)
    best_weight[has] = totals[best[has]]
    with np.errstate(invalid="ignore"):  # NaN runner-up: no other candidate, never close
        active = headed & has & (runner >= best_weight - 2 * HEAD_BONUS)
    grouped = np.flatnonzero((group_code >= 0) & has)
    if len(grouped):
        shared = group_code[grouped] * np.int64(int(rows.max()) + 1) + rows[best[grouped]]
        _, inverse, counts = np.unique(shared, return_inverse=True, return_counts=True)
        clash = group_code[grouped][counts[inverse] > 1]
        touched = np.union1d(clash, group_code[active & (group_code >= 0)])
        active |= np.isin(group_code, touched) & (group_code >= 0)
    return np.flatnonzero(active)
