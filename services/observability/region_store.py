"""Region progress that survives a restart: the latest counts of every family, in a small SQLite file.

Rows are upserted per family key, so replaying a batch after a crash writes the same rows again
(idempotent, like the linker's outputs). Only counts and the family key are stored (the key is the
questionnaire's address code, no person data); the district is derived from the key again on load, so
new district targets apply to old rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

#: (family key, members, auto-linked members, members in review)
FamilyRow = tuple[str, int, int, int]


class RegionStore:
    """The per-family counts behind region progress, in `path` (SQLite, created when missing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written from the engine's worker thread; every use is under the lock below.
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            # WAL without a sync per commit: safe against a process crash (what the linker does on purpose);
            # after a power loss the last batches' counts may be missing until those families come again.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS family_counts (family_key TEXT PRIMARY KEY, members INTEGER NOT NULL,"
                " linked INTEGER NOT NULL, review INTEGER NOT NULL)"
            )

    def load(self) -> list[FamilyRow]:
        """Every family's latest counts."""
        with self._lock:
            return list(self._db.execute("SELECT family_key, members, linked, review FROM family_counts"))

    def save(self, rows: Iterable[FamilyRow]) -> None:
        """Upsert the counts of these families in one transaction."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO family_counts VALUES (?, ?, ?, ?) ON CONFLICT (family_key) DO UPDATE SET"
                " members = excluded.members, linked = excluded.linked, review = excluded.review",
                list(rows),
            )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
