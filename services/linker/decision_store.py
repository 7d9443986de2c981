"""The clerical decisions a link-store file keeps beside its member links (sticky human decisions).

Table `review_decisions` in each link-store file: one row per applied decision (accept, new_person,
skip, undo) of a member of that file's families, with the identity digest of the member data the
reviewer saw. The rows are read once at open (decisions are few: a share of the review band) and kept
in memory by member key, like the minted ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb

from contracts.review_decisions import ReviewOutcome
from services.updates.clerical import AppliedDecision, StickyDecision, effective, task_revision

SCHEMA = """
CREATE TABLE IF NOT EXISTS review_decisions (
    decision_id VARCHAR PRIMARY KEY,
    task_id     VARCHAR NOT NULL,
    member_key  VARCHAR NOT NULL,
    sequence    BIGINT NOT NULL,
    outcome     VARCHAR NOT NULL,
    chosen_nik  VARCHAR,
    probability DOUBLE,
    match_weight DOUBLE,
    identity    VARCHAR NOT NULL,
    revokes     VARCHAR
);
"""
_COLUMNS = (
    "decision_id, task_id, member_key, sequence, outcome, chosen_nik, probability, match_weight, identity, revokes"
)


def read_decisions(con: duckdb.DuckDBPyConnection) -> dict[str, list[AppliedDecision]]:
    """Every applied decision of the file, by member key, in (task, sequence) order."""
    rows = con.execute(f"SELECT {_COLUMNS} FROM review_decisions ORDER BY member_key, task_id, sequence").fetchall()
    out: dict[str, list[AppliedDecision]] = {}
    for r in rows:
        entry = AppliedDecision(str(r[0]), str(r[1]), str(r[2]), int(r[3]), ReviewOutcome(r[4]), r[5], r[6], r[7],
                                str(r[8]), r[9])  # fmt: skip
        out.setdefault(entry.member_key, []).append(entry)
    return out


def insert_decisions(con: duckdb.DuckDBPyConnection, entries: Sequence[AppliedDecision]) -> None:
    """Append applied decisions (inside the caller's transaction); an id already stored is kept once."""
    for e in entries:
        con.execute(
            f"INSERT INTO review_decisions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (decision_id) DO NOTHING",
            [e.decision_id, e.task_id, e.member_key, e.sequence, e.outcome.value, e.chosen_nik, e.probability,
             e.match_weight, e.identity, e.revokes],
        )  # fmt: skip


def task_log(decisions: Sequence[AppliedDecision], task_id: str) -> list[AppliedDecision]:
    """The decisions of one task, in sequence order."""
    return sorted((d for d in decisions if d.task_id == task_id), key=lambda d: d.sequence)


def sticky_of(decisions: Sequence[AppliedDecision]) -> StickyDecision | None:
    """A member's effective human decision: that of its latest decided task (highest revision).

    An earlier task's decision does not outlive a later task: a later task exists only because the
    member's data changed (else the decision had been applied and no task raised).
    """
    if not decisions:
        return None
    latest = max({d.task_id for d in decisions}, key=lambda t: (task_revision(t, decisions[0].member_key) or 0, t))
    return effective(task_log(decisions, latest))


def sticky_decisions(held: dict[str, list[AppliedDecision]], member_keys: Iterable[str]) -> dict[str, StickyDecision]:
    """The effective decisions of the given members that have one."""
    out = {}
    for key in set(member_keys):
        sticky = sticky_of(held.get(key, []))
        if sticky is not None:
            out[key] = sticky
    return out
