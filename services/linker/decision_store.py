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
from integration.clerical import AppliedDecision, StickyDecision, effective

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
    revokes     VARCHAR,
    reviewer_id VARCHAR NOT NULL,
    held        BOOLEAN NOT NULL,
    applied_no  BIGINT NOT NULL
);
"""
_COLUMNS = (
    "decision_id, task_id, member_key, sequence, outcome, chosen_nik, probability, match_weight, identity, revokes, "
    "reviewer_id, held"
)


def read_decisions(con: duckdb.DuckDBPyConnection) -> dict[str, list[AppliedDecision]]:
    """Every applied decision of the file, by member key, in the order they were applied."""
    rows = con.execute(f"SELECT {_COLUMNS} FROM review_decisions ORDER BY applied_no").fetchall()
    out: dict[str, list[AppliedDecision]] = {}
    for r in rows:
        entry = AppliedDecision(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            int(r[3]),
            ReviewOutcome(r[4]),
            r[5],
            r[6],
            r[7],
            str(r[8]),
            r[9],
            str(r[10]),
            bool(r[11]),
        )
        out.setdefault(entry.member_key, []).append(entry)
    return out


def insert_decisions(con: duckdb.DuckDBPyConnection, entries: Sequence[AppliedDecision]) -> None:
    """Append applied decisions (inside the caller's transaction); an id already stored is kept once."""
    row = con.execute("SELECT coalesce(max(applied_no), 0) FROM review_decisions").fetchone()
    number = int(row[0]) if row else 0
    for e in entries:
        number += 1
        con.execute(
            f"INSERT INTO review_decisions ({_COLUMNS}, applied_no) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (decision_id) DO NOTHING",
            [
                e.decision_id,
                e.task_id,
                e.member_key,
                e.sequence,
                e.outcome.value,
                e.chosen_nik,
                e.probability,
                e.match_weight,
                e.identity,
                e.revokes,
                e.reviewer_id,
                e.held,
                number,
            ],
        )


def task_log(decisions: Sequence[AppliedDecision], task_id: str) -> list[AppliedDecision]:
    """The decisions of one task, in sequence order."""
    return sorted((d for d in decisions if d.task_id == task_id), key=lambda d: d.sequence)


def sticky_of(decisions: Sequence[AppliedDecision]) -> StickyDecision | None:
    """A member's effective human decision: that of the task decided last (`decisions` in the order
    they were applied).

    An earlier task's decision does not outlive a later task: a later task exists only because the
    member's data changed, an undo reopened the review, or a second review was asked for.
    """
    if not decisions:
        return None
    return effective(task_log(decisions, decisions[-1].task_id))


def sticky_decisions(held: dict[str, list[AppliedDecision]], member_keys: Iterable[str]) -> dict[str, StickyDecision]:
    """The effective decisions of the given members that have one."""
    out = {}
    for key in set(member_keys):
        sticky = sticky_of(held.get(key, []))
        if sticky is not None:
            out[key] = sticky
    return out
