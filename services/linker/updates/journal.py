"""The journal of applied master and sectoral changes, so a restarted linker's engine knows them.

The engine loads the master from the world's files at start-up; the changes applied since live only in
memory. Each acknowledged batch of changes is appended here (`<state_dir>/master-updates.duckdb`,
idempotent by change id) and replayed into the engine before the linker consumes anything. The same
transaction stores the reader's positions (topic, partition -> next offset): every instance reads
every change record outside the consumer group, and resumes from here. Each row also keeps the
change's cause and source position, so a link-store file that missed some changes (another instance
owned it, or it was not written before a crash) can be caught up from this journal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from contracts.linkage_updates import UpdateCause
from integration.master import MasterPerson, MasterWriter
from services.linker.store import save_positions
from services.linker.updates.changes import Change, SectoralFact
from services.linker.updates.positions import Positions, unseen

_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS applied_seq;
CREATE TABLE IF NOT EXISTS applied_changes (
    seq       BIGINT DEFAULT nextval('applied_seq'),
    change_id VARCHAR PRIMARY KEY,
    kind      VARCHAR NOT NULL,
    fact_json VARCHAR NOT NULL
);
ALTER TABLE applied_changes ADD COLUMN IF NOT EXISTS cause_json VARCHAR;
ALTER TABLE applied_changes ADD COLUMN IF NOT EXISTS src_topic VARCHAR;
ALTER TABLE applied_changes ADD COLUMN IF NOT EXISTS src_partition INTEGER;
ALTER TABLE applied_changes ADD COLUMN IF NOT EXISTS src_offset BIGINT;
ALTER TABLE applied_changes ADD COLUMN IF NOT EXISTS event_time_us BIGINT;
CREATE TABLE IF NOT EXISTS reader_positions (
    topic       VARCHAR NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


@dataclass(frozen=True)
class JournalEntry:
    """A change and where it was read (None: journalled before positions were kept)."""

    change: Change
    position: tuple[str, int, int] | None = None


class MasterJournal:
    """Applied changes in order, and the reader's positions (one DuckDB file owned by one linker process)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(path))
        self._con.execute(_SCHEMA)

    def record(self, entries: Sequence[JournalEntry | Change], positions: Positions | None = None) -> None:
        """Append the changes that wrote to the master (a re-delivered change id is kept once) and,
        in the same transaction, the reader's new positions."""
        rows = []
        for item in entries:
            entry = item if isinstance(item, JournalEntry) else JournalEntry(item)
            c, pos = entry.change, entry.position
            if c.person is not None:
                kind, fact = "person", json.dumps(dataclasses.asdict(c.person))
            elif c.sectoral is not None:
                kind, fact = "sectoral", json.dumps(dataclasses.asdict(c.sectoral))
            else:
                continue  # changes nothing (a sectoral row without a NIK)
            topic, partition, offset = pos if pos is not None else (None, None, None)
            when = None if c.time is None else (c.time - _EPOCH) // dt.timedelta(microseconds=1)
            rows.append((c.cause.change_id, kind, fact, c.cause.model_dump_json(), topic, partition, offset, when))
        if not rows and not positions:
            return
        self._con.execute("BEGIN TRANSACTION")
        try:
            if rows:
                self._con.executemany(
                    "INSERT INTO applied_changes (change_id, kind, fact_json, cause_json, src_topic, "
                    "src_partition, src_offset, event_time_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (change_id) DO NOTHING",
                    rows,
                )
            save_positions(self._con, "reader_positions", positions)
            self._con.execute("COMMIT")
        except Exception:
            self._con.execute("ROLLBACK")
            raise

    def positions(self) -> dict[tuple[str, int], int]:
        """Where the reader resumes: the next offset of every change partition read so far."""
        rows = self._con.execute("SELECT topic, partition, next_offset FROM reader_positions").fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def replay(self, master: MasterWriter) -> int:
        """Apply every recorded change to `master` in order; returns how many."""
        rows = self._con.execute("SELECT kind, fact_json FROM applied_changes ORDER BY seq").fetchall()
        for kind, text in rows:
            _write(master, _fact(kind, text))
        return len(rows)

    def unseen_by(self, file: Positions) -> list[JournalEntry]:
        """The journalled changes a link-store file at positions `file` has not applied, in order."""
        seen = sorted(file.items())
        rows = self._con.execute(
            "WITH f AS (SELECT unnest(?::VARCHAR[]) AS topic, unnest(?::INTEGER[]) AS part, "
            "unnest(?::BIGINT[]) AS next_offset) "
            "SELECT kind, fact_json, cause_json, src_topic, src_partition, src_offset, event_time_us "
            "FROM applied_changes a "
            "LEFT JOIN f ON f.topic = a.src_topic AND f.part = a.src_partition "
            "WHERE a.src_topic IS NOT NULL AND a.src_offset >= coalesce(f.next_offset, 0) ORDER BY a.seq",
            [[t for (t, _), _ in seen], [p for (_, p), _ in seen], [o for _, o in seen]],
        ).fetchall()
        out = []
        for kind, text, cause, topic, partition, offset, when in rows:
            position = (str(topic), int(partition), int(offset))
            if not unseen(position, file):
                continue
            fact = _fact(kind, text)
            cause_ = UpdateCause.model_validate_json(cause)
            time = None if when is None else _EPOCH + dt.timedelta(microseconds=int(when))
            if isinstance(fact, MasterPerson):
                change = Change(cause_, person=fact, time=time)
            else:
                change = Change(cause_, sectoral=fact, time=time)
            out.append(JournalEntry(change, position))
        return out

    def close(self) -> None:
        """Close the file."""
        self._con.close()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _fact(kind: str, text: str) -> MasterPerson | SectoralFact:
    data = json.loads(text)
    return MasterPerson(**data) if kind == "person" else SectoralFact(**data)


def _write(master: MasterWriter, fact: MasterPerson | SectoralFact) -> None:
    if isinstance(fact, MasterPerson):
        master.upsert_master(fact)
    else:
        master.set_sectoral(fact.source, fact.nik, fact.sectoral_id, fact.decile)
