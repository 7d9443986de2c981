"""What each subscriber last received about each record: the publisher's delivery state.

Kept in the disclosure log's SQLite file (table `delivery_state`, upserted, NOT append-only: it is
working state, the log is the record). Used to derive events (new vs changed), to skip records whose
projection did not change, and to name the notification a correction supersedes.

Table `source_positions` holds, per input topic and partition, the offset after the last record the
state reflects. A record below it is a replay (offsets reset, a new consumer group) and is skipped:
re-deciding it against the newer state would send the older record again as a "change". A linkage
topic that is deleted and re-created restarts its offsets: delete the publisher's state file with it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_state (
    subscriber_id TEXT NOT NULL,
    state_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    person_ids TEXT NOT NULL,
    deceased TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, state_key)
);
CREATE TABLE IF NOT EXISTS source_positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


@dataclass(frozen=True)
class Delivered:
    """The last notification a subscriber got about one record (`m:<member key>` or `f:<family key>`).

    `person_ids` maps member key -> internal person id at that time; `deceased` are the member serials
    the master then recorded as dead (family records only); `revision` is the submission revision, so a
    replayed older revision never overwrites a newer one at the subscriber.
    """

    message_id: str
    digest: str
    person_ids: dict[str, str] = field(default_factory=dict)
    deceased: tuple[int, ...] = ()
    revision: int = 0


class DeliveryState:
    """Upserted state rows in a SQLite connection shared with the disclosure log."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.executescript(_SCHEMA)

    def get(self, subscriber_id: str, state_key: str) -> Delivered | None:
        """The last delivery, or None if the subscriber never got this record."""
        row = self._db.execute(
            "SELECT message_id, digest, person_ids, deceased, revision FROM delivery_state "
            "WHERE subscriber_id = ? AND state_key = ?",
            (subscriber_id, state_key),
        ).fetchone()
        if row is None:
            return None
        return Delivered(row[0], row[1], json.loads(row[2]), tuple(json.loads(row[3])), int(row[4]))

    def put(self, db: sqlite3.Connection, subscriber_id: str, state_key: str, delivered: Delivered) -> None:
        """Record a delivery inside the caller's transaction."""
        db.execute(
            "INSERT INTO delivery_state (subscriber_id, state_key, message_id, digest, person_ids, deceased, revision) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (subscriber_id, state_key) DO UPDATE SET "
            "message_id = excluded.message_id, digest = excluded.digest, person_ids = excluded.person_ids, "
            "deceased = excluded.deceased, revision = excluded.revision",
            (
                subscriber_id,
                state_key,
                delivered.message_id,
                delivered.digest,
                json.dumps(delivered.person_ids, sort_keys=True),
                json.dumps(list(delivered.deceased)),
                delivered.revision,
            ),
        )

    def logged(self, message_id: str) -> bool:
        """Whether the disclosure log (same file) records this id as sent: the broker acknowledged it.

        A pending or in-doubt entry does not count: its send may not have happened, so it is sent again.
        """
        row = self._db.execute(
            "SELECT 1 FROM disclosure_outcomes WHERE message_id = ? AND outcome = 'sent'", (message_id,)
        ).fetchone()
        return row is not None

    def positions(self) -> dict[tuple[str, int], int]:
        """The next unprocessed offset of every input (topic, partition) the state reflects."""
        rows = self._db.execute("SELECT topic, partition, next_offset FROM source_positions").fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def advance(self, db: sqlite3.Connection, positions: dict[tuple[str, int], int]) -> None:
        """Record processed input positions inside the caller's transaction (never moving back)."""
        db.executemany(
            "INSERT INTO source_positions (topic, partition, next_offset) VALUES (?,?,?) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
            [(t, p, o) for (t, p), o in sorted(positions.items())],
        )
