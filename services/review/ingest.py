"""Feeds the review state from Kafka: review tasks, member links (which close tasks) and submissions.

Partitions are assigned directly (no consumer group): the positions live in the state file and are
written in the same transaction as the records they cover, so after a restart reading resumes exactly
after the last stored batch. A record that cannot be read is kept in the state's `rejected` table with a
bounded reason (never its payload) and counted; it never stops the feed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from contracts.linkage_outputs import LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from services.kafka.clients import KafkaConsumer, TopicPartition, reader
from services.kafka.errors import KafkaError
from services.review.settings import ReviewSettings
from services.review.store import ReviewStore

log = logging.getLogger("regsosek.review.ingest")


class Ingest:
    """Reads the three input topics into the store from a daemon thread; `caught_up` once at the end."""

    def __init__(
        self,
        settings: ReviewSettings,
        store: ReviewStore,
        on_batch: Callable[[dict[str, int], int], None] | None = None,
    ) -> None:
        self._settings, self._store, self._on_batch = settings, store, on_batch
        self._kinds = {
            settings.review_topic: "review",
            settings.members_topic: "member",
            settings.submissions_topic: "submission",
        }
        self._stop = threading.Event()
        self.caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="review-ingest", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """Caught up once, still running and not in an error."""
        return self.caught_up.is_set() and self._thread.is_alive() and self.error is None

    def stop(self) -> None:
        """Stop after the current batch."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as exc:  # broker away or state trouble: keep what is stored, retry
                self.error = exc.__class__.__name__
                log.warning("review ingest: %s; retrying in 2 s", self.error)
                self._stop.wait(2.0)

    def _consume(self) -> None:
        consumer = reader(
            self._settings.bootstrap,
            client_id=f"{self._settings.client_id}-ingest",
            **self._settings.kafka_python_security(),
        )
        try:
            assigned = self._assign(consumer)
            end = consumer.end_offsets(assigned)
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=300, max_records=500)
                if batch:
                    self._apply(batch)
                if not self.caught_up.is_set() and all(consumer.position(tp) >= end[tp] for tp in assigned):
                    self.caught_up.set()
                self.error = None
        finally:
            consumer.close()

    def _assign(self, consumer: KafkaConsumer) -> list[TopicPartition]:
        assigned: list[TopicPartition] = []
        deadline = time.monotonic() + 60
        for topic in self._kinds:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions and not self._stop.is_set():
                if time.monotonic() > deadline:
                    raise KafkaError(f"topic {topic} not found")
                self._stop.wait(0.5)
                partitions = consumer.partitions_for_topic(topic)
            assigned += [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(assigned)
        stored = self._store.offsets()
        for tp in assigned:
            if (tp.topic, tp.partition) in stored:
                consumer.seek(tp, stored[(tp.topic, tp.partition)])
            else:
                consumer.seek_to_beginning(tp)
        return assigned

    def _apply(self, batch: dict[TopicPartition, list[Any]]) -> None:
        items: list[tuple[str, Any, int]] = []
        rejected: list[tuple[str, int, int, str]] = []
        positions: dict[tuple[str, int], int] = {}
        counts: dict[str, int] = {}
        read_ms = int(time.time() * 1000)
        for tp, records in batch.items():
            kind = self._kinds[tp.topic]
            for r in records:
                positions[(tp.topic, tp.partition)] = r.offset + 1
                parsed, reason = _parse(kind, r.value)
                if parsed is None:
                    rejected.append((tp.topic, tp.partition, r.offset, reason))
                    counts["rejected"] = counts.get("rejected", 0) + 1
                    continue
                # A task's age is how long it has waited here: the time this app read it, not the
                # record's timestamp (the event time, e.g. the enumeration day; docs/review.md).
                items.append((kind, parsed, read_ms if kind == "review" else int(r.timestamp)))
                counts[kind] = counts.get(kind, 0) + 1
        self._store.ingest(items, positions, rejected)
        if self._on_batch is not None:
            self._on_batch(counts, len(rejected))


def _parse(kind: str, value: bytes | None) -> tuple[Any, str]:
    if value is None:
        return None, "tombstone"
    try:
        if kind == "review":
            return REVIEW_TASK_ADAPTER.validate_json(value), ""
        if kind == "member":
            return LINKED_MEMBER_ADAPTER.validate_json(value), ""
        return FAMILY_SUBMISSION_ADAPTER.validate_json(value), ""
    except ValidationError as exc:
        # Error types only (the text may echo personal values).
        return None, "invalid: " + ",".join(sorted({str(e["type"]) for e in exc.errors()}))[:200]
