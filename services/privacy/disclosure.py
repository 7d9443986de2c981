"""The disclosure log: an append-only record of every notification sent (UU PDP: record of disclosure).

One SQLite file. Each entry says who received which record, when, why (purpose) and which fields, and
which internal person ids the record was about (a family notification discloses all its members).
The API has no update or delete, and SQLite triggers refuse UPDATE and DELETE on the tables, so a
mistake in code (or a casual `sqlite3` session) cannot rewrite history. Entries are keyed by the
notification's deterministic message id: logging the same notification again is a no-op.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS disclosures (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    subscriber_id TEXT NOT NULL,
    purpose_code TEXT NOT NULL,
    event_type TEXT NOT NULL,
    record_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    reference_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    disclosed_at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS disclosed_persons (
    message_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (message_id, person_id)
);
CREATE INDEX IF NOT EXISTS disclosures_by_subscriber ON disclosures (subscriber_id, disclosed_at);
CREATE INDEX IF NOT EXISTS disclosed_by_person ON disclosed_persons (person_id);
CREATE TRIGGER IF NOT EXISTS disclosures_no_update BEFORE UPDATE ON disclosures
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosures_no_delete BEFORE DELETE ON disclosures
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosed_persons_no_update BEFORE UPDATE ON disclosed_persons
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosed_persons_no_delete BEFORE DELETE ON disclosed_persons
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
"""

_COLUMNS = (
    "message_id, subscriber_id, purpose_code, event_type, record_type, subject_id, reference_id, fields, "
    "disclosed_at, source"
)


@dataclass(frozen=True)
class Disclosure:
    """One logged notification. `subject_id` is the internal person id or family key it was about."""

    message_id: str
    subscriber_id: str
    purpose_code: str
    event_type: str
    record_type: str
    subject_id: str
    reference_id: str
    fields: tuple[str, ...]
    disclosed_at: datetime
    source: str
    person_ids: tuple[str, ...] = ()


class DisclosureLog:
    """Append and query disclosures in one SQLite file (created on first use)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; other stores sharing the file can join it (the publisher's delivery state)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def connection(self) -> sqlite3.Connection:
        """The shared connection (for stores that keep their tables in the same file)."""
        return self._db

    def append(self, entries: Iterable[Disclosure], *, db: sqlite3.Connection | None = None) -> int:
        """Log entries; one already logged (same message id) is skipped. Returns how many were new."""
        if db is None:
            with self.transaction() as tx:
                return self.append(entries, db=tx)
        added = 0
        for e in entries:
            cur = db.execute(
                f"INSERT OR IGNORE INTO disclosures ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (e.message_id, e.subscriber_id, e.purpose_code, e.event_type, e.record_type, e.subject_id,
                 e.reference_id, ",".join(sorted(e.fields)), _iso(e.disclosed_at), e.source),
            )  # fmt: skip
            if cur.rowcount:
                added += 1
                db.executemany(
                    "INSERT OR IGNORE INTO disclosed_persons (message_id, person_id) VALUES (?, ?)",
                    [(e.message_id, p) for p in sorted(set(e.person_ids))],
                )
        return added

    def query(
        self,
        *,
        subscriber_id: str | None = None,
        person_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Disclosure]:
        """Disclosures in log order, filtered by subscriber, person (subject or member) and time [since, until)."""
        where, args = [], []
        if subscriber_id is not None:
            where.append("d.subscriber_id = ?")
            args.append(subscriber_id)
        if person_id is not None:
            where.append(
                "(d.subject_id = ? OR d.message_id IN (SELECT message_id FROM disclosed_persons WHERE person_id = ?))"
            )
            args += [person_id, person_id]
        if since is not None:
            where.append("d.disclosed_at >= ?")
            args.append(_iso(since))
        if until is not None:
            where.append("d.disclosed_at < ?")
            args.append(_iso(until))
        sql = f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))} FROM disclosures d"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._db.execute(sql, args).fetchall()
        return [self._entry(row) for row in rows]

    def _entry(self, row: tuple[str, ...]) -> Disclosure:
        persons = self._db.execute(
            "SELECT person_id FROM disclosed_persons WHERE message_id = ? ORDER BY person_id", (row[0],)
        ).fetchall()
        return Disclosure(
            message_id=row[0], subscriber_id=row[1], purpose_code=row[2], event_type=row[3],
            record_type=row[4], subject_id=row[5], reference_id=row[6],
            fields=tuple(f for f in row[7].split(",") if f), disclosed_at=datetime.fromisoformat(row[8]),
            source=row[9], person_ids=tuple(p for (p,) in persons),
        )  # fmt: skip

    def count(self) -> int:
        """How many disclosures are logged."""
        (n,) = self._db.execute("SELECT count(*) FROM disclosures").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def _iso(moment: datetime) -> str:
    # UTC with a fixed width, so text comparison in SQL orders by time.
    if moment.tzinfo is None:
        raise ValueError("disclosure times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
