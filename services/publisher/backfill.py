"""Backfill: a new subscription first receives the current state of every matching record, then the live feed.

Mechanism. `subscriptions add` sets `backfill: true` on the subscription (unless `--no-backfill`). When
the publisher starts (`PublisherLoop.run` / `run_until_idle`, before its first live batch) it looks for
active subscriptions with `backfill` and no completion mark in its state file (table `backfills`, keyed
by subscriber and `valid_from`, so a subscriber removed and added again is backfilled again). For them it:

1. reads `linkage.members.v1` and `linkage.families.v1` (compacted: one current value per key) from
   the beginning up to their end offsets *at that moment* (`read_current`), keeping the latest value
   per key and dropping keys whose latest record is a tombstone (`current_state`);
2. decides one snapshot notification per matching record (`Publisher.snapshot`: filters, fields,
   pseudonyms as usual, `snapshot: true`, only when the subscription lists the record's creation event);
3. delivers them like live ones, in chunks: write-ahead log entry (`pending`, source
   `snapshot:<topic>/<partition>/<offset>`) -> send with acks=all -> `sent` + delivery state;
4. records the completion mark. Then the live loop runs; a live record the snapshot already covered
   (same or older revision) finds it in the delivery state and sends nothing.

A crash during a backfill repeats it on restart: records already delivered are skipped (their revision
is in the delivery state), those logged but not acknowledged are sent again with the same message ids.
Update events (`linkage.updates.v1`) are history, not state: they are not replayed to a new subscriber.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from contracts.subscriptions import Subscription, SubscriptionRegistry
from services.kafka.clients import TopicPartition, reader
from services.kafka.record import KafkaRecord
from services.publisher.core import Notification, Publisher

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backfills (
    subscriber_id TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    notifications INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, valid_from)
);
"""

#: Notifications per write-ahead/send/confirm round of a backfill.
CHUNK = 500


class BackfillError(RuntimeError):
    """The compacted topics could not be read to their end offsets; nothing of the backfill was sent."""


class BackfillMarks:
    """Which subscriptions were backfilled (a table in the publisher's state file)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.executescript(_SCHEMA)

    def done(self, sub: Subscription) -> bool:
        """Whether this subscription (subscriber and validity start) was backfilled."""
        row = self._db.execute(
            "SELECT 1 FROM backfills WHERE subscriber_id = ? AND valid_from = ?",
            (sub.subscriber_id, sub.valid_from.isoformat()),
        ).fetchone()
        return row is not None

    def record(self, db: sqlite3.Connection, sub: Subscription, moment: datetime, notifications: int) -> None:
        """Mark the subscription backfilled, inside the caller's transaction."""
        db.execute(
            "INSERT OR IGNORE INTO backfills (subscriber_id, valid_from, completed_at, notifications) VALUES (?,?,?,?)",
            (sub.subscriber_id, sub.valid_from.isoformat(), moment.isoformat(), notifications),
        )


def pending(registry: SubscriptionRegistry, marks: BackfillMarks, moment: datetime) -> list[Subscription]:
    """Active subscriptions that ask for a backfill and have not had it."""
    return [s for s in registry.subscriptions if s.backfill and s.active_at(moment) and not marks.done(s)]


def current_state(records: Iterable[KafkaRecord]) -> list[KafkaRecord]:
    """The latest record of every (topic, key), in offset order; keys whose latest record is a tombstone
    are dropped (what a compacted topic holds once compaction has run)."""
    latest: dict[tuple[str, bytes | None], KafkaRecord] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        latest[(r.topic, r.key)] = r
    return sorted((r for r in latest.values() if r.value is not None), key=lambda r: (r.topic, r.partition, r.offset))


def read_current(
    bootstrap: str, topics: Iterable[str], *, timeout_s: float = 60.0, **security: Any
) -> list[KafkaRecord]:
    """Every record of `topics` from the beginning up to the end offsets taken when called (no group)."""
    consumer = reader(bootstrap, client_id="regsosek-publisher-backfill", **security)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = {tp: off for tp, off in consumer.end_offsets(partitions).items() if off > 0}
        records: list[KafkaRecord] = []
        if not ends:
            return records
        consumer.assign(list(ends))
        consumer.seek_to_beginning(*ends)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise BackfillError(f"the linkage topics were not read to their end offsets in {timeout_s:.0f} s")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records += [KafkaRecord.of(r) for r in batch if r.offset < ends[tp]]
        return records
    finally:
        consumer.close()


def run_backfills(
    publisher: Publisher,
    send: Callable[[list[Notification]], None],
    read: Callable[[], list[KafkaRecord]],
    clock: Callable[[], datetime],
) -> dict[str, int]:
    """Backfill every pending subscription; returns notifications sent per subscriber.

    `send` delivers a chunk and raises if the broker did not acknowledge it (then nothing is confirmed,
    the subscription stays pending and the entries logged ahead become in doubt on the next start).
    """
    if not any(s.backfill for s in publisher.registry.subscriptions):
        return {}  # nothing to do: not even the marks table is touched
    marks = BackfillMarks(publisher.log.connection)
    subs = pending(publisher.registry, marks, clock())
    if not subs:
        return {}
    state = current_state(read())
    sent: dict[str, int] = {}
    for sub in subs:
        notifications = [n for r in state if (n := publisher.snapshot(sub, r)) is not None]
        for start in range(0, len(notifications), CHUNK):
            chunk = notifications[start : start + CHUNK]
            try:
                publisher.log_pending(chunk)
                send(chunk)
                publisher.confirm(chunk)
            except BaseException:
                publisher.abandon()
                raise
        with publisher.log.transaction() as tx:
            marks.record(tx, sub, clock(), len(notifications))
        sent[sub.subscriber_id] = len(notifications)
    return sent
