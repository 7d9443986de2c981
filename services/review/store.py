"""The review app's durable state (one SQLite file): tasks, families, decisions and consumer positions.

Consumed records and the next offsets are written in one transaction, so a restart resumes exactly
where the last committed batch ended and loses nothing. Decisions are recorded before they are produced
(an outbox): a decision whose produce failed is released again, and one left unproduced by a crash is
produced at the next start with the same deterministic id.

Concurrency: a task carries a `sequence` (decisions recorded on it). A decision is claimed with a
compare-and-set on that sequence, so of two reviewers deciding the same task at once exactly one wins.

Second reviews: the linker holds a decision that needs a second, agreeing reviewer and raises the task
`<task id>/second-<held decision id>` (docs/linker.md, "Second-reviewer rule"). Such a task has the
source `second_review`; it is hidden from the queue of the reviewer who made the held decision, and it
closes when the held decision is undone (the linker would refuse any decision on it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.linkage_outputs import LinkedMember, MemberDecision, ReviewTask
from contracts.review_decisions import ReviewDecision, ReviewOutcome
from integration.clerical import SECOND_REVIEW_MARK
from linkage.labels import uncertainty

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
  task_id TEXT PRIMARY KEY, member_key TEXT NOT NULL, family_key TEXT NOT NULL, district TEXT NOT NULL,
  village TEXT NOT NULL, source TEXT NOT NULL, revision INTEGER NOT NULL, received_ms INTEGER NOT NULL,
  aid_priority INTEGER NOT NULL, status TEXT NOT NULL, sequence INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL,
  day INTEGER GENERATED ALWAYS AS (received_ms / 86400000) VIRTUAL, uncertainty REAL NOT NULL DEFAULT 0);
-- The queue order (oldest day, aid families, time) straight from an index: no sort of all open tasks.
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (status, day, aid_priority, received_ms, task_id);
CREATE INDEX IF NOT EXISTS tasks_district ON tasks (status, district);
CREATE INDEX IF NOT EXISTS tasks_member ON tasks (member_key);
CREATE TABLE IF NOT EXISTS families (family_key TEXT PRIMARY KEY, revision INTEGER NOT NULL, submission TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
  decision_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, sequence INTEGER NOT NULL, outcome TEXT NOT NULL,
  reviewer_id TEXT NOT NULL, previous_status TEXT NOT NULL, produced INTEGER NOT NULL, body TEXT NOT NULL,
  UNIQUE (task_id, sequence));
CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS rejected (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
  reason TEXT NOT NULL, PRIMARY KEY (topic, partition, "offset"));
"""
# The active-learning order (most uncertain first) straight from an index too; created after the
# migration of older state files, which lack the column.
_UNCERTAINTY_INDEX = (
    "CREATE INDEX IF NOT EXISTS tasks_uncertainty ON tasks (status, uncertainty DESC, received_ms, task_id)"
)

OPEN, DECIDED, CLOSED = "open", "decided", "closed"
#: Queue orders (`ReviewSettings.queue_order`): oldest first, or most uncertain first (active learning).
AGE, UNCERTAINTY = "age", "uncertainty"
_COLUMNS = (
    "task_id, member_key, family_key, district, village, source, revision, received_ms, aid_priority, status,"
    " sequence, record"
)
#: DTKS deciles whose social aid depends on the link: these families come first within a day.
AID_DECILES = range(1, 5)
_DAY_MS = 86_400_000
#: Age buckets of open tasks (label value, lower bound in days), for the backlog metrics.
AGE_BUCKETS = (("0-1d", 0), ("1-3d", 1), ("3-7d", 3), ("7-14d", 7), ("14d+", 14))
SECOND_REVIEW = "second_review"


class DecisionRefused(Exception):
    """A decision that cannot be recorded; `reason` is a bounded code, `message` is safe to show."""

    def __init__(self, reason: str, message: str, status: int) -> None:
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


@dataclass(frozen=True)
class TaskRow:
    """One task as stored."""

    task_id: str
    member_key: str
    family_key: str
    district: str
    village: str
    source: str
    revision: int
    received_ms: int
    aid_priority: int
    status: str
    sequence: int
    record: ReviewTask


@dataclass(frozen=True)
class QueueFilter:
    """Queue filters; None means any."""

    district: str | None = None
    village: str | None = None
    source: str | None = None
    min_age_days: int | None = None


@dataclass(frozen=True)
class Backlog:
    """The open tasks at one moment: how many, by age bucket, the oldest, and second reviews among them."""

    open: int
    by_age: dict[str, int]
    oldest_received_ms: int | None
    second_reviews: int


def source_of(task: ReviewTask) -> str:
    """`submission` for a task from linking a submission, `master_change` for one from a master update,
    `second_review` for a task that asks a second reviewer to confirm a held decision."""
    if SECOND_REVIEW_MARK in task.task_id:
        return SECOND_REVIEW
    return "master_change" if task.task_id.count("/") >= 2 else "submission"


def held_decision_id(task_id: str) -> str | None:
    """The id of the held decision a second-review task asks to confirm (None: not a second review)."""
    if SECOND_REVIEW_MARK not in task_id:
        return None
    return task_id.rsplit(SECOND_REVIEW_MARK, 1)[1]


def second_review_task_id(decision: ReviewDecision) -> str:
    """The task id the linker raises when it holds `decision` (as integration/clerical.py names it)."""
    return f"{decision.task_id.split(SECOND_REVIEW_MARK, 1)[0]}{SECOND_REVIEW_MARK}{decision.decision_id}"


class ReviewStore:
    """Thread-safe access to the SQLite state file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self._db.execute(_UNCERTAINTY_INDEX)
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        """State files written before the uncertainty order: add the column and fill it from the records."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_xinfo(tasks)")}
        if "uncertainty" in columns:
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("ALTER TABLE tasks ADD COLUMN uncertainty REAL NOT NULL DEFAULT 0")
        rows = self._db.execute("SELECT task_id, record FROM tasks").fetchall()
        self._db.executemany(
            "UPDATE tasks SET uncertainty = ? WHERE task_id = ?",
            [(task_uncertainty(ReviewTask.model_validate_json(r)), t) for t, r in rows],
        )
        self._db.execute("COMMIT")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    # ---- ingest -------------------------------------------------------------------------------------
    def offsets(self) -> dict[tuple[str, int], int]:
        """The next offset to read per (topic, partition)."""
        with self._lock:
            rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
        return {(t, p): o for t, p, o in rows}

    def ingest(
        self,
        items: Iterable[tuple[str, Any, int]],
        positions: dict[tuple[str, int], int],
        rejected: Iterable[tuple[str, int, int, str]] = (),
    ) -> None:
        """Apply consumed records (`kind`, model, timestamp ms) and the new positions in one transaction."""
        with self._tx() as db:
            for kind, model, ts_ms in items:
                if kind == "review":
                    self._apply_review(db, model, ts_ms)
                elif kind == "member":
                    self._apply_member(db, model)
                else:
                    self._apply_submission(db, model)
            for topic, partition, offset, reason in rejected:
                db.execute("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)", (topic, partition, offset, reason))
            db.executemany(
                "INSERT INTO offsets VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset",
                [(t, p, o) for (t, p), o in positions.items()],
            )

    @staticmethod
    def _apply_review(db: sqlite3.Connection, task: ReviewTask, ts_ms: int) -> None:
        family = task.member_key[:22]
        # A newer revision of the member supersedes its older open tasks.
        db.execute(
            "UPDATE tasks SET status = ? WHERE member_key = ? AND revision < ? AND status = ?",
            (CLOSED, task.member_key, task.revision, OPEN),
        )
        newer = db.execute(
            "SELECT 1 FROM tasks WHERE member_key = ? AND revision > ?", (task.member_key, task.revision)
        ).fetchone()
        aid = 0 if task.dtks_decile in AID_DECILES else 1
        held = held_decision_id(task.task_id)
        if held is not None and _undone(db, held):
            newer = True  # its held decision was undone here: the linker would refuse any decision on it
        db.execute(
            "INSERT INTO tasks (task_id, member_key, family_key, district, village, source, revision, received_ms,"
            " aid_priority, status, record, uncertainty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (
                task.task_id,
                task.member_key,
                family,
                family[:7],
                family[:10],
                source_of(task),
                task.revision,
                ts_ms,
                aid,
                CLOSED if newer else OPEN,
                task.model_dump_json(),
                task_uncertainty(task),
            ),
        )

    @staticmethod
    def _apply_member(db: sqlite3.Connection, member: LinkedMember) -> None:
        if member.decision is MemberDecision.PENDING_REVIEW:
            return
        # The member left review (auto link or no match at this or a later revision): its tasks close.
        db.execute(
            "UPDATE tasks SET status = ? WHERE member_key = ? AND revision <= ? AND status = ?",
            (CLOSED, member.member_key, member.revision, OPEN),
        )

    @staticmethod
    def _apply_submission(db: sqlite3.Connection, submission: Any) -> None:
        db.execute(
            "INSERT INTO families VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET revision = excluded.revision,"
            " submission = excluded.submission WHERE excluded.revision >= families.revision",
            (submission.family_key.key, submission.revision, submission.model_dump_json()),
        )

    # ---- reading ------------------------------------------------------------------------------------
    def task(self, task_id: str) -> TaskRow | None:
        """One task, or None when unknown."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return _row(row) if row else None

    def queue(
        self, flt: QueueFilter, now_ms: int, *, limit: int = 200, skipped_by: str | None = None, order: str = AGE
    ) -> list[TaskRow]:
        """Open tasks, oldest day first, within a day families whose aid depends on the link first; with
        `order` "uncertainty", the tasks whose answer the model is least sure of first (then oldest).

        With `skipped_by` (a reviewer id), the tasks that reviewer skipped last and the second reviews of
        that reviewer's own held decisions are left out."""
        where, args = _where(flt, now_ms)
        if skipped_by is not None:
            where += (
                " AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.task_id = tasks.task_id"
                " AND d.reviewer_id = ? AND d.outcome = 'skip' AND d.sequence = tasks.sequence - 1)"
                " AND NOT (tasks.source = ? AND EXISTS (SELECT 1 FROM decisions h WHERE h.decision_id ="
                " substr(tasks.task_id, instr(tasks.task_id, ?) + ?) AND h.reviewer_id = ?))"
            )
            args += [skipped_by, SECOND_REVIEW, SECOND_REVIEW_MARK, len(SECOND_REVIEW_MARK), skipped_by]
        by = "day, aid_priority, received_ms, task_id"
        if order == UNCERTAINTY:
            by = "uncertainty DESC, received_ms, task_id"
        sql = f"SELECT {_COLUMNS} FROM tasks WHERE {where} ORDER BY {by} LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_row(r) for r in rows]

    def counts_by_district(self, flt: QueueFilter, now_ms: int) -> list[tuple[str, int]]:
        """Open tasks per district code under the filter (the district filter itself ignored)."""
        where, args = _where(QueueFilter(None, None, flt.source, flt.min_age_days), now_ms)
        with self._lock:
            rows = self._db.execute(
                f"SELECT district, count(*) FROM tasks WHERE {where} GROUP BY district ORDER BY district", args
            ).fetchall()
        return [(d, n) for d, n in rows]

    def open_count(self) -> int:
        """All open tasks."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM tasks WHERE status = ?", (OPEN,)).fetchone()[0])

    def backlog(self, now_ms: int) -> Backlog:
        """Open tasks by age bucket (from their record time), the oldest one's time, second reviews."""
        # One pass over the covering queue index; bucket i holds ages in [days_i, days_i+1) (a record time
        # in the future counts as new). The bounds are integers computed here, never user input.
        starts = [now_ms - days * _DAY_MS for _, days in AGE_BUCKETS]
        cases = [f"sum(received_ms > {starts[1]})"]
        pairs = zip(starts[1:], starts[2:], strict=False)
        cases += [f"sum(received_ms <= {a} AND received_ms > {b})" for a, b in pairs]
        cases.append(f"sum(received_ms <= {starts[-1]})")
        bounds = AGE_BUCKETS
        sql = (
            f"SELECT count(*), min(received_ms), sum(instr(task_id, ?) > 0), {', '.join(cases)}"
            " FROM tasks WHERE status = ?"
        )
        with self._lock:
            row = self._db.execute(sql, (SECOND_REVIEW_MARK, OPEN)).fetchone()
        total, oldest, second, *counts = row
        return Backlog(
            int(total),
            {label: int(n or 0) for (label, _), n in zip(bounds, counts, strict=True)},
            None if oldest is None else int(oldest),
            int(second or 0),
        )

    def family(self, family_key: str) -> dict[str, Any] | None:
        """The latest stored submission of a family (as JSON data), or None."""
        with self._lock:
            row = self._db.execute("SELECT submission FROM families WHERE family_key = ?", (family_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def last_decision(self, task_id: str) -> ReviewDecision | None:
        """The latest produced decision on a task."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM decisions WHERE task_id = ? AND produced = 1 ORDER BY sequence DESC LIMIT 1",
                (task_id,),
            ).fetchone()
        return ReviewDecision.model_validate_json(row[0]) if row else None

    def decision(self, decision_id: str) -> ReviewDecision | None:
        """A produced decision by id."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM decisions WHERE decision_id = ? AND produced = 1", (decision_id,)
            ).fetchone()
        return ReviewDecision.model_validate_json(row[0]) if row else None

    def rejected_count(self) -> int:
        """Consumed records that could not be read (kept with their reason)."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])

    # ---- deciding -----------------------------------------------------------------------------------
    def claim(self, decision: ReviewDecision) -> None:
        """Record `decision` (not yet produced) if the task is still at its sequence; else DecisionRefused."""
        with self._tx() as db:
            row = db.execute("SELECT status, sequence FROM tasks WHERE task_id = ?", (decision.task_id,)).fetchone()
            if row is None:
                raise DecisionRefused("unknown_task", "There is no review task with this id.", 404)
            status, sequence = row
            if sequence != decision.sequence:
                raise DecisionRefused(
                    "stale", "This task changed meanwhile (another decision was recorded); reload it.", 409
                )
            if status == CLOSED:
                raise DecisionRefused("closed", "This task left review (a newer link exists); nothing recorded.", 409)
            undo = decision.outcome is ReviewOutcome.UNDO
            if status == DECIDED and not undo:
                raise DecisionRefused("decided", "This task is already decided.", 409)
            new_status = DECIDED if decision.outcome in (ReviewOutcome.ACCEPT, ReviewOutcome.NEW_PERSON) else OPEN
            db.execute(
                "UPDATE tasks SET status = ?, sequence = sequence + 1 WHERE task_id = ?", (new_status, decision.task_id)
            )
            db.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    decision.decision_id,
                    decision.task_id,
                    decision.sequence,
                    decision.outcome.value,
                    decision.reviewer_id,
                    status,
                    decision.model_dump_json(),
                ),
            )

    def mark_produced(self, decision_id: str) -> None:
        """The broker acknowledged the decision. An acknowledged undo of a held decision closes the second
        review that asks to confirm it (the linker refuses decisions on it from now on)."""
        with self._tx() as db:
            db.execute("UPDATE decisions SET produced = 1 WHERE decision_id = ?", (decision_id,))
            row = db.execute(
                "SELECT body FROM decisions WHERE decision_id = ? AND outcome = ?",
                (decision_id, ReviewOutcome.UNDO.value),
            ).fetchone()
            if row is None:
                return
            undo = ReviewDecision.model_validate_json(row[0])
            revoked = db.execute(
                "SELECT body FROM decisions WHERE decision_id = ?", (undo.revokes_decision_id,)
            ).fetchone()
            if revoked is not None:
                second = second_review_task_id(ReviewDecision.model_validate_json(revoked[0]))
                db.execute("UPDATE tasks SET status = ? WHERE task_id = ? AND status = ?", (CLOSED, second, OPEN))

    def release(self, decision: ReviewDecision) -> None:
        """Undo a claim whose produce failed: the task is back at its previous status and sequence."""
        with self._tx() as db:
            row = db.execute(
                "SELECT previous_status FROM decisions WHERE decision_id = ? AND produced = 0", (decision.decision_id,)
            ).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM decisions WHERE decision_id = ?", (decision.decision_id,))
            db.execute(
                "UPDATE tasks SET status = ?, sequence = ? WHERE task_id = ?",
                (row[0], decision.sequence, decision.task_id),
            )

    def unproduced(self) -> list[ReviewDecision]:
        """Claimed decisions the broker has not acknowledged (left by a crash), in claim order."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM decisions WHERE produced = 0 ORDER BY rowid").fetchall()
        return [ReviewDecision.model_validate_json(r[0]) for r in rows]


def task_uncertainty(task: ReviewTask) -> float:
    """`linkage.labels.uncertainty` of a task's ranked candidates (its single candidate for older records)."""
    probabilities = [c.probability for c in task.candidates] if task.candidates else [task.probability]
    return round(uncertainty(probabilities), 9)


def _undone(db: sqlite3.Connection, decision_id: str) -> bool:
    """Whether a produced undo revokes `decision_id` (looked up on its task: an index, not a scan)."""
    row = db.execute("SELECT task_id FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
    if row is None:
        return False
    undos = db.execute(
        "SELECT body FROM decisions WHERE task_id = ? AND outcome = ? AND produced = 1",
        (row[0], ReviewOutcome.UNDO.value),
    ).fetchall()
    return any(ReviewDecision.model_validate_json(b).revokes_decision_id == decision_id for (b,) in undos)


def _where(flt: QueueFilter, now_ms: int) -> tuple[str, list[Any]]:
    clauses: list[str] = ["status = ?"]
    args: list[Any] = [OPEN]
    if flt.district:
        clauses.append("district = ?")
        args.append(flt.district)
    if flt.village:
        clauses.append("village = ?")
        args.append(flt.village)
    if flt.source:
        clauses.append("source = ?")
        args.append(flt.source)
    if flt.min_age_days:
        clauses.append("received_ms <= ?")
        args.append(now_ms - flt.min_age_days * _DAY_MS)
    return " AND ".join(clauses), args


def _row(row: tuple[Any, ...]) -> TaskRow:
    task_id, member_key, family_key, district, village, source, revision, received_ms, aid, status, seq, record = row
    return TaskRow(
        task_id,
        member_key,
        family_key,
        district,
        village,
        source,
        revision,
        received_ms,
        aid,
        status,
        seq,
        ReviewTask.model_validate_json(record),
    )
