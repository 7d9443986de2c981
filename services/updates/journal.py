"""The journal of applied master and sectoral changes, so a restarted linker's engine knows them.

The engine loads the master from the world's files at start-up; the changes applied since live only in
memory. Each acknowledged batch of changes is appended here (`<state_dir>/master-updates.duckdb`,
idempotent by change id) and replayed into the engine before the linker consumes anything.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import duckdb

from services.updates.changes import Change, SectoralFact
from services.updates.master import MasterPerson, MasterWriter

_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS applied_seq;
CREATE TABLE IF NOT EXISTS applied_changes (
    seq       BIGINT DEFAULT nextval('applied_seq'),
    change_id VARCHAR PRIMARY KEY,
    kind      VARCHAR NOT NULL,
    fact_json VARCHAR NOT NULL
);
"""


class MasterJournal:
    """Applied changes in order (one DuckDB file owned by one linker process)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(path))
        self._con.execute(_SCHEMA)

    def record(self, changes: Sequence[Change]) -> None:
        """Append the changes that wrote to the master (a re-delivered change id is kept once)."""
        rows = []
        for c in changes:
            if c.person is not None:
                rows.append((c.cause.change_id, "person", json.dumps(dataclasses.asdict(c.person))))
            elif c.sectoral is not None:
                rows.append((c.cause.change_id, "sectoral", json.dumps(dataclasses.asdict(c.sectoral))))
        if not rows:
            return
        self._con.executemany(
            "INSERT INTO applied_changes (change_id, kind, fact_json) VALUES (?, ?, ?) "
            "ON CONFLICT (change_id) DO NOTHING",
            rows,
        )

    def replay(self, master: MasterWriter) -> int:
        """Apply every recorded change to `master` in order; returns how many."""
        rows = self._con.execute("SELECT kind, fact_json FROM applied_changes ORDER BY seq").fetchall()
        for kind, text in rows:
            data = json.loads(text)
            if kind == "person":
                master.upsert_master(MasterPerson(**data))
            else:
                fact = SectoralFact(**data)
                master.set_sectoral(fact.source, fact.nik, fact.sectoral_id, fact.decile)
        return len(rows)

    def close(self) -> None:
        """Close the file."""
        self._con.close()
