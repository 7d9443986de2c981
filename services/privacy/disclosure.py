"""The disclosure log: an append-only, write-ahead record of every notification (UU PDP: record of disclosure).

One SQLite file. Each entry says who received which record, when, why (purpose) and which fields, and
which internal person ids the record was about (a family notification discloses all its members).
The API has no update or delete, and SQLite triggers refuse UPDATE and DELETE on the tables, so a
mistake in code (or a casual `sqlite3` session) cannot rewrite history. Entries are keyed by the
notification's deterministic message id: logging the same notification again is a no-op.

Write-ahead: the publisher appends an entry BEFORE it sends the notification; what happened to the send
is appended later to `disclosure_outcomes` (never an update of the entry). The status of an entry:
- `pending`: logged, no outcome yet (being sent now, or the publisher stopped; see `mark_in_doubt`);
- `in_doubt`: the publisher stopped after logging it and before recording an acknowledgement, so the
  notification may have been delivered. It stays a recorded disclosure; `sent` follows if the same
  message is sent again and acknowledged;
- `sent`: the broker acknowledged the notification.
Every status counts as a disclosure: an entry is never removed because its send did not happen.

Tamper evidence (`services.privacy.chain`): every entry and outcome is also appended, in the same
transaction, to a hash chain in which each row commits to the previous one; `verify` recomputes it.
A log written before the chain is chained on its first writable open (`chain.migrate`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.privacy.chain import CHAIN_SCHEMA, Verification, chain_entry, chain_outcome, migrate
from services.privacy.chain import verify as verify_chain

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
CREATE TABLE IF NOT EXISTS disclosure_outcomes (
    message_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'in_doubt')),
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (message_id, outcome)
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
CREATE TRIGGER IF NOT EXISTS disclosure_outcomes_no_update BEFORE UPDATE ON disclosure_outcomes
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosure_outcomes_no_delete BEFORE DELETE ON disclosure_outcomes
    BEGIN SELECT RAISE(ABORT, 'the disclosure log is append-only'); END;
"""

#: The statuses of an entry (module docstring), in the order a send moves through them.
PENDING, IN_DOUBT, SENT = "pending", "in_doubt", "sent"
STATUSES: tuple[str, ...] = (PENDING, IN_DOUBT, SENT)
# The status of `d` (a `disclosures` row alias) from its outcomes: sent wins over in doubt.
# ('sent' sorts after 'in_doubt', so MAX picks it.)
_STATUS_SQL = (
    "COALESCE((SELECT MAX(o.outcome) FROM disclosure_outcomes o WHERE o.message_id = d.message_id), 'pending')"
)


class DisclosureLogError(RuntimeError):
    """The disclosure log could not be written: the publisher must stop before it sends anything more."""


_COLUMNS = (
    "message_id, subscriber_id, purpose_code, event_type, record_type, subject_id, reference_id, fields, "
    "disclosed_at, source"
)


@dataclass(frozen=True)
class Disclosure:
    """One logged notification. `subject_id` is the internal person id or family key it was about.

    `disclosed_at` is when the entry was logged, just before the send; the acknowledgement time is the
    `sent` outcome's (`DisclosureLog.sent_at`).
    """

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

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._status_sql = _STATUS_SQL
        if read_only:
            # For audits: never creates, migrates or writes anything (the file may be on a read-only copy).
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            if not self._has_table("disclosure_outcomes"):
                self._status_sql = "'sent'"  # a log from before write-ahead holds acknowledged entries only
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            had_outcomes = self._has_table("disclosure_outcomes")
            had_chain = self._has_table("disclosure_chain")
            self._db.executescript(_SCHEMA + CHAIN_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise DisclosureLogError(f"the disclosure log {path} cannot be opened for writing: {exc}") from exc
        if not had_outcomes or not had_chain:
            with self.transaction() as tx:
                if not had_outcomes:
                    # A log written before write-ahead logged each entry after its acknowledgement.
                    tx.execute(
                        "INSERT OR IGNORE INTO disclosure_outcomes (message_id, outcome, recorded_at) "
                        "SELECT message_id, 'sent', disclosed_at FROM disclosures"
                    )
                if not had_chain:
                    migrate(tx)

    def _has_table(self, name: str) -> bool:
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row is not None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; other stores sharing the file can join it (the publisher's delivery state).

        Any SQLite failure (read-only file, disk full, locked, a refused write) is raised as
        `DisclosureLogError` after the transaction was rolled back: nothing of it is kept.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DisclosureLogError(f"the disclosure log {self.path} cannot be written: {exc}") from exc
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise DisclosureLogError(f"the disclosure log {self.path} cannot be written: {exc}") from exc
            raise

    def _rollback(self) -> None:
        # After a failed COMMIT SQLite may already have rolled back; the original error is the one to report.
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

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
                (
                    e.message_id,
                    e.subscriber_id,
                    e.purpose_code,
                    e.event_type,
                    e.record_type,
                    e.subject_id,
                    e.reference_id,
                    ",".join(sorted(e.fields)),
                    _iso(e.disclosed_at),
                    e.source,
                ),
            )
            if cur.rowcount:
                added += 1
                db.executemany(
                    "INSERT OR IGNORE INTO disclosed_persons (message_id, person_id) VALUES (?, ?)",
                    [(e.message_id, p) for p in sorted(set(e.person_ids))],
                )
                chain_entry(db, e.message_id)
        return added

    def query(
        self,
        *,
        subscriber_id: str | None = None,
        person_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[Disclosure]:
        """Disclosures in log order, filtered by subscriber, person (subject or member), time [since, until)
        and status (`STATUSES`)."""
        where, args = [], []
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {', '.join(STATUSES)}")
            where.append(f"{self._status_sql} = ?")
            args.append(status)
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
            message_id=row[0],
            subscriber_id=row[1],
            purpose_code=row[2],
            event_type=row[3],
            record_type=row[4],
            subject_id=row[5],
            reference_id=row[6],
            fields=tuple(f for f in row[7].split(",") if f),
            disclosed_at=datetime.fromisoformat(row[8]),
            source=row[9],
            person_ids=tuple(p for (p,) in persons),
        )

    def mark(
        self, outcome: str, message_ids: Iterable[str], moment: datetime, *, db: sqlite3.Connection | None = None
    ) -> None:
        """Append an outcome (`SENT` or `IN_DOUBT`) for logged entries; an outcome already there is kept."""
        if outcome not in (SENT, IN_DOUBT):
            raise ValueError(f"an outcome is {SENT} or {IN_DOUBT}")
        if db is None:
            with self.transaction() as tx:
                return self.mark(outcome, message_ids, moment, db=tx)
        _insert_outcomes(db, outcome, message_ids, moment)
        return None

    def mark_pending_in_doubt(self, moment: datetime) -> int:
        """At start-up: every entry still pending was left by a stopped run and may have been delivered.

        Returns how many entries became `in_doubt`. Nothing is removed: each stays a recorded disclosure.
        """
        with self.transaction() as tx:
            pending = [
                m
                for (m,) in tx.execute(
                    f"SELECT d.message_id FROM disclosures d WHERE {_STATUS_SQL} = 'pending' ORDER BY d.seq"
                )
            ]
            _insert_outcomes(tx, IN_DOUBT, pending, moment)
            return len(pending)

    def status(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The status (`STATUSES`) of each logged message id; ids not in the log are left out."""
        out: dict[str, str] = {}
        for m in message_ids:
            row = self._db.execute(
                f"SELECT {self._status_sql} FROM disclosures d WHERE d.message_id = ?", (m,)
            ).fetchone()
            if row is not None:
                out[m] = str(row[0])
        return out

    def summary(self) -> dict[tuple[str, str], dict[str, int]]:
        """Entries per (subscriber, purpose) and status; every status is present (0 if none)."""
        rows = self._db.execute(
            f"SELECT d.subscriber_id, d.purpose_code, {self._status_sql} AS st, count(*) FROM disclosures d "
            "GROUP BY d.subscriber_id, d.purpose_code, st"
        ).fetchall()
        out: dict[tuple[str, str], dict[str, int]] = {}
        for subscriber, purpose, st, n in rows:
            out.setdefault((subscriber, purpose), dict.fromkeys(STATUSES, 0))[st] = int(n)
        return out

    def sent_at(self, message_id: str) -> datetime | None:
        """When the broker's acknowledgement of `message_id` was recorded, or None if it was not."""
        if self._status_sql != _STATUS_SQL:  # a read-only log from before write-ahead has no outcomes
            return None
        row = self._db.execute(
            "SELECT recorded_at FROM disclosure_outcomes WHERE message_id = ? AND outcome = 'sent'", (message_id,)
        ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def verify(self, *, expected_head: str | None = None) -> Verification:
        """Check the hash chain (`services.privacy.chain.verify`); a log without one is a problem."""
        if not self._has_table("disclosure_chain"):
            result = Verification()
            result.problems.append((0, "the log has no hash chain yet: it is added when the publisher next opens it"))
            return result
        return verify_chain(self._db, expected_head=expected_head)

    def count(self) -> int:
        """How many disclosures are logged."""
        (n,) = self._db.execute("SELECT count(*) FROM disclosures").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def _insert_outcomes(db: sqlite3.Connection, outcome: str, message_ids: Iterable[str], moment: datetime) -> None:
    # Each new outcome joins the hash chain in the same transaction; an outcome already there is kept.
    for m in message_ids:
        cur = db.execute(
            "INSERT OR IGNORE INTO disclosure_outcomes (message_id, outcome, recorded_at) "
            "SELECT message_id, ?, ? FROM disclosures WHERE message_id = ?",
            (outcome, _iso(moment), m),
        )
        if cur.rowcount:
            chain_outcome(db, m, outcome)


def _iso(moment: datetime) -> str:
    # UTC with a fixed width, so text comparison in SQL orders by time.
    if moment.tzinfo is None:
        raise ValueError("disclosure times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
