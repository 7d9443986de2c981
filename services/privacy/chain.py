"""The disclosure log's hash chain: every row (entry or outcome) commits to the row before it.

SQLite triggers stop a mistake, not an attacker: `DROP TRIGGER` then `DELETE` rewrites the file. The
chain makes that visible. Table `disclosure_chain` holds one row per log row in the order they were
written: position, kind (`entry` / `outcome`), the row's identity and `row_hash`:

    row_hash = SHA-256( previous row_hash (hex, 64 x "0" for the first) + "\\n" + canonical(row) )

`canonical(row)` is compact JSON (sorted keys, no spaces, UTF-8) of every column of the row; an entry
includes its `seq` and the sorted person ids it disclosed (`disclosed_persons`). `verify` recomputes the chain from
the data rows and names the first position where a row was deleted, altered or moved, and any row
that is in the log but not in the chain (inserted behind the publisher's back).

What the chain cannot show on its own: the whole chain recomputed by someone who rewrote the file, or
rows cut off at the end. Record the head hash that `regsosek audit verify` prints somewhere the
publisher host cannot write (a ticket, a daily report); `verify --head` checks it is still in the chain.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field

CHAIN_SCHEMA = """
CREATE TABLE IF NOT EXISTS disclosure_chain (
    pos INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('entry', 'outcome')),
    message_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    UNIQUE (kind, message_id, outcome)
);
CREATE TRIGGER IF NOT EXISTS disclosure_chain_no_update BEFORE UPDATE ON disclosure_chain
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosure_chain_no_delete BEFORE DELETE ON disclosure_chain
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
"""

GENESIS = "0" * 64
# `seq` is the entry's place in the log (audits list in that order): renumbering it is a reordering.
_ENTRY_COLUMNS = (
    "seq",
    "message_id",
    "subscriber_id",
    "purpose_code",
    "event_type",
    "record_type",
    "subject_id",
    "reference_id",
    "fields",
    "disclosed_at",
    "source",
)


def canonical(doc: dict[str, object]) -> bytes:
    """The deterministic encoding a row is hashed in."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(previous: str, doc: dict[str, object]) -> str:
    """The hash of a row given the previous row's hash."""
    return hashlib.sha256(previous.encode() + b"\n" + canonical(doc)).hexdigest()


def entry_doc(db: sqlite3.Connection, message_id: str) -> dict[str, object] | None:
    """The hashed content of the entry `message_id`, or None if it is not in the log."""
    row = db.execute(
        f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM disclosures WHERE message_id = ?", (message_id,)
    ).fetchone()
    if row is None:
        return None
    persons = db.execute(
        "SELECT person_id FROM disclosed_persons WHERE message_id = ? ORDER BY person_id", (message_id,)
    ).fetchall()
    return {"kind": "entry", **dict(zip(_ENTRY_COLUMNS, row, strict=True)), "person_ids": [p for (p,) in persons]}


def outcome_doc(db: sqlite3.Connection, message_id: str, outcome: str) -> dict[str, object] | None:
    """The hashed content of one outcome row, or None if it is not in the log."""
    row = db.execute(
        "SELECT recorded_at FROM disclosure_outcomes WHERE message_id = ? AND outcome = ?", (message_id, outcome)
    ).fetchone()
    if row is None:
        return None
    return {"kind": "outcome", "message_id": message_id, "outcome": outcome, "recorded_at": row[0]}


def head(db: sqlite3.Connection) -> tuple[int, str]:
    """The last position and its hash ((0, GENESIS) for an empty chain)."""
    row = db.execute("SELECT pos, row_hash FROM disclosure_chain ORDER BY pos DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def chain_entry(db: sqlite3.Connection, message_id: str) -> None:
    """Append the entry just inserted (same transaction) to the chain."""
    doc = entry_doc(db, message_id)
    assert doc is not None, "chain_entry is called after the entry's insert"
    _append(db, "entry", message_id, "", doc)


def chain_outcome(db: sqlite3.Connection, message_id: str, outcome: str) -> None:
    """Append the outcome just inserted (same transaction) to the chain."""
    doc = outcome_doc(db, message_id, outcome)
    assert doc is not None, "chain_outcome is called after the outcome's insert"
    _append(db, "outcome", message_id, outcome, doc)


def _append(db: sqlite3.Connection, kind: str, message_id: str, outcome: str, doc: dict[str, object]) -> None:
    pos, previous = head(db)
    db.execute(
        "INSERT INTO disclosure_chain (pos, kind, message_id, outcome, row_hash) VALUES (?,?,?,?,?)",
        (pos + 1, kind, message_id, outcome, link(previous, doc)),
    )


def migrate(db: sqlite3.Connection) -> int:
    """Chain a log written before the chain existed (call once, when the table was just created).

    Entries in log order (`seq`), then outcomes in insertion order: the interleaving of an old log is
    not known, and the chain vouches only for the log as it was at this first open. Returns rows chained.
    """
    entries = [m for (m,) in db.execute("SELECT message_id FROM disclosures ORDER BY seq")]
    outcomes = db.execute("SELECT message_id, outcome FROM disclosure_outcomes ORDER BY rowid").fetchall()
    for m in entries:
        chain_entry(db, m)
    for m, o in outcomes:
        chain_outcome(db, m, o)
    return len(entries) + len(outcomes)


@dataclass
class Verification:
    """What `verify` found. `problems` are (position, what) pairs, position 0 for rows outside the chain."""

    rows: int = 0
    head: str = GENESIS
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def verify(db: sqlite3.Connection, *, expected_head: str | None = None) -> Verification:
    """Recompute the chain from the data rows; report deleted, altered, reordered and unchained rows."""
    result = Verification()
    previous, expected_pos = GENESIS, 1
    seen_entries: set[str] = set()
    seen_outcomes: set[tuple[str, str]] = set()
    hashes: set[str] = set()
    rows = db.execute("SELECT pos, kind, message_id, outcome, row_hash FROM disclosure_chain ORDER BY pos")
    for pos, kind, message_id, outcome, row_hash in rows:
        result.rows += 1
        if pos != expected_pos:
            result.problems.append((expected_pos, f"chain rows {expected_pos}-{pos - 1} are missing (deleted)"))
        expected_pos = pos + 1
        if kind == "entry":
            seen_entries.add(message_id)
            doc = entry_doc(db, message_id)
        else:
            seen_outcomes.add((message_id, outcome))
            doc = outcome_doc(db, message_id, outcome)
        what = f"{kind} {message_id}" + (f" ({outcome})" if outcome else "")
        if doc is None:
            result.problems.append((pos, f"{what} was deleted"))
        elif link(previous, doc) != row_hash:
            result.problems.append((pos, f"{what} was altered, or rows were reordered or removed before it"))
        previous = row_hash
        hashes.add(row_hash)
    result.head = previous
    for (m,) in db.execute("SELECT message_id FROM disclosures ORDER BY seq"):
        if m not in seen_entries:
            result.problems.append((0, f"entry {m} is not in the chain (inserted outside the publisher)"))
    for m, o in db.execute("SELECT message_id, outcome FROM disclosure_outcomes ORDER BY rowid"):
        if (m, o) not in seen_outcomes:
            result.problems.append((0, f"outcome {m} ({o}) is not in the chain (inserted outside the publisher)"))
    if expected_head is not None and expected_head not in hashes:
        result.problems.append((0, f"the recorded head {expected_head[:16]}... is not in the chain (rewritten or cut)"))
    return result
