"""Family context: resolve members of one submitted family against each other and against the master.

Within one family submission, two members cannot be the same master person. When a member's NIK
belongs to a relative, or father and son share a name, the scores alone can send two members to one
master record. The tie-break assigns the family's candidate pairs greedily by match weight: the
strongest pair is fixed first, and a master record taken by one member is no longer available to the
other members of the same submission, which then fall back to their next-best candidate.

The head's name is the second piece of family context. A master record belongs to the submitted family
when the head of its family card (KK) in the master has the submission's head name (normalised); and
within that family the master head is the submission's head member, not one of the others. This
evidence only reorders close candidates: each pair's place in the greedy order is its match weight plus
`HEAD_BONUS` bits per step of evidence, so it decides between candidates at most 2 x `HEAD_BONUS` bits
apart and never changes a reported weight (those stay Splink's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from linkage.normalise.names import normalise_name

# Bits of greedy order per step of head evidence (-1, 0, +1). Name, birth-date and KK levels of the
# members model lie 1.5-16 bits apart, so only near ties between candidates are reordered.
HEAD_BONUS = 2.0
# The master's relationship to the head of the KK: Dukcapil wording, or the questionnaire's code 1.
_HEAD_VALUES = frozenset({"KEPALA KELUARGA", "1"})


@dataclass(frozen=True)
class Candidate:
    """A scored candidate pair (record -> master record)."""

    record_id: str
    master_record_id: str
    match_weight: float
    match_probability: float
    contradicted: bool = False  # name and birth date both disagree (linkage.engine.relatives): never auto-link


@dataclass(frozen=True)
class Choice:
    """The chosen master record of one record and the runner-up's weight (None: no other candidate)."""

    candidate: Candidate | None
    runner_up_weight: float | None


@dataclass(frozen=True)
class MemberHead:
    """A submitted member's view of its family head: the head's name key and whether it is the head."""

    head_key: str | None
    is_head: bool | None


@dataclass(frozen=True)
class MasterHead:
    """A master record's family head: the name key of its KK's head and whether it is that head."""

    head_key: str
    is_head: bool


@dataclass(frozen=True)
class HeadContext:
    """Head names of the submissions (by record id) and of the master's families (by master record id)."""

    members: Mapping[str, MemberHead]
    masters: Mapping[str, MasterHead]

    def evidence(self, record_id: str, master_record_id: str) -> int:
        """+1: the master record is in the submitted family in the member's role (head or not);
        -1: in that family but in the other role; 0: no evidence either way."""
        member = self.members.get(record_id)
        master = self.masters.get(master_record_id)
        if member is None or master is None or member.head_key is None or member.head_key != master.head_key:
            return 0
        if member.is_head is None:
            return 1
        return 1 if member.is_head == master.is_head else -1


def head_name_key(name: str | None) -> str | None:
    """The comparable form of a head's name: normalised tokens joined without spaces."""
    return normalise_name(name).name_concat


def is_head_role(role: object) -> bool:
    """Whether a relationship value marks the head of the family (Dukcapil wording or code 1)."""
    return role is not None and str(role).strip().upper() in _HEAD_VALUES


def member_heads(records: pa.Table, id_column: str = "record_id") -> dict[str, MemberHead]:
    """Head context of survey member records (`record_id`, `head_name`, optional `relationship`: 1 head;
    CSV text and Dukcapil wording are read too)."""
    if "head_name" not in records.column_names:
        return {}
    ids = records.column(id_column).to_pylist()
    heads = records.column("head_name").to_pylist()
    roles = (
        records.column("relationship").to_pylist()
        if "relationship" in records.column_names
        else [None] * records.num_rows
    )
    out: dict[str, MemberHead] = {}
    for rid, head, role in zip(ids, heads, roles, strict=True):
        key = head_name_key(head)
        if key is not None:
            text = "" if role is None else str(role).strip().upper()
            out[str(rid)] = MemberHead(key, text in _HEAD_VALUES if text else None)
    return out


def kk_heads(
    kks: Sequence[str | None], keys: Sequence[str | None], roles: Sequence[object]
) -> tuple[list[str | None], list[bool]]:
    """Per master row: the name key of its KK's head (None: unknown) and whether the row is a head.

    `keys` are the rows' own name keys (`head_name_key` of the full name). A KK with no head, several
    heads or a head without a name has no known head; rows without a KK number have none either.
    """
    heads = [is_head_role(r) for r in roles]
    head_of: dict[str, str | None] = {}
    for kk, key, head in zip(kks, keys, heads, strict=True):
        if kk and head:
            head_of[kk] = key if kk not in head_of and key is not None else None
    return [head_of.get(kk) if kk else None for kk in kks], heads


def master_heads(master: pa.Table) -> dict[str, MasterHead]:
    """Family heads of master records (`record_id`, `kk_number`, `full_name`, `relationship`).

    Only members of a KK with exactly one head are described: with none or several the family's head
    is unknown. Empty when the master has no `relationship` column.
    """
    if "relationship" not in master.column_names:
        return {}
    ids = [str(v) for v in master.column("record_id").to_pylist()]
    roles = master.column("relationship").to_pylist()
    # only the heads' name keys are read: normalising every master name would be wasted work
    names = [
        head_name_key(n) if is_head_role(r) else None
        for n, r in zip(master.column("full_name").to_pylist(), roles, strict=True)
    ]
    keys, heads = kk_heads(master.column("kk_number").to_pylist(), names, roles)
    return {rid: MasterHead(key, head) for rid, key, head in zip(ids, keys, heads, strict=True) if key is not None}


def choose_best(
    candidates: Iterable[Candidate],
    group_of: Mapping[str, str] | None = None,
    heads: HeadContext | None = None,
) -> dict[str, Choice]:
    """Best candidate per record, one-to-one inside each group (a family submission).

    `group_of` maps a record id to its group; records without a group are resolved alone. `heads`, when
    given, moves each pair `HEAD_BONUS` bits up or down the order per step of head evidence. Records that
    lose every candidate to relatives get `Choice(None, best_weight)`.
    """
    by_group: dict[str, list[Candidate]] = defaultdict(list)
    by_record: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        group = group_of.get(c.record_id) if group_of is not None else None
        by_group[group if group is not None else "\0" + c.record_id].append(c)
        by_record[c.record_id].append(c)

    def order(p: Candidate) -> tuple[float, str, str]:
        bonus = HEAD_BONUS * heads.evidence(p.record_id, p.master_record_id) if heads is not None else 0.0
        # Ties are broken by ids so the result does not depend on input order.
        return (-(p.match_weight + bonus), p.record_id, p.master_record_id)

    chosen: dict[str, Candidate] = {}
    for pairs in by_group.values():
        taken: set[str] = set()
        for c in sorted(pairs, key=order):
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
