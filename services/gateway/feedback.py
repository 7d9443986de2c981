"""Field feedback for CAPI devices: an in-memory index of `field.feedback.v1`, and the reader that fills it.

The index holds the latest record of every item (the topic is compacted, keyed by item id), grouped by
team. A device pages through its team's items with an opaque cursor: the broker positions
(partition -> offset) of the last items it has seen. Items come in (partition, offset) order, so an item
that changes again later reappears after the cursor with its new state; the cursor survives gateway
restarts and works on any gateway instance (offsets are the broker's, not ours). `since` may also be an
ISO-8601 time: items whose latest record the broker stored at or after it.

`KafkaFeedbackReader` assigns every partition (no consumer group), reads from the beginning and reports
ready once it reached the end offsets it saw at start; it keeps following the topic after that.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from contracts.feedback import FIELD_FEEDBACK_ADAPTER, FeedbackKind, FeedbackStatus, FieldFeedback
from services.kafka.aio import AIOKafkaConsumer, TopicPartition, reader, topic_partitions
from services.kafka.errors import AioKafkaError as KafkaError
from services.observability.gateway_metrics import GatewayMetrics

log = logging.getLogger(__name__)


class BadCursor(ValueError):
    """`since` is neither a cursor this gateway issued nor an ISO-8601 time with an offset."""


@dataclass(frozen=True)
class Cursor:
    """Positions seen per partition (next items have a higher offset), and an optional time floor (ms)."""

    offsets: Mapping[int, int]
    min_timestamp_ms: int | None = None

    def encode(self) -> str:
        data: dict[str, Any] = {"o": {str(p): o for p, o in sorted(self.offsets.items())}}
        if self.min_timestamp_ms is not None:
            data["t"] = self.min_timestamp_ms
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, since: str | None) -> Cursor:
        """The cursor of `since`: empty (everything), a cursor string, or an ISO-8601 time with offset."""
        if not since:
            return cls({})
        if since[:4].isdigit() and "-" in since[:5]:
            try:
                moment = dt.datetime.fromisoformat(since)
            except ValueError:
                raise BadCursor("since: not an ISO-8601 time") from None
            if moment.tzinfo is None:
                raise BadCursor("since: an ISO-8601 time needs its UTC offset, e.g. 2026-01-31T08:00:00+07:00")
            return cls({}, int(moment.timestamp() * 1000))
        try:
            padded = since + "=" * (-len(since) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            offsets = {int(p): int(o) for p, o in data["o"].items()}
            floor = data.get("t")
            return cls(offsets, None if floor is None else int(floor))
        except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError, AttributeError):
            raise BadCursor("since: not a cursor from this API (use the next_cursor of a previous answer)") from None


@dataclass(frozen=True)
class Entry:
    """An item's latest record and where the broker stored it."""

    partition: int
    offset: int
    timestamp_ms: int
    item: FieldFeedback


class FeedbackIndex:
    """The latest state of every feedback item, by team; updates the feedback metrics as records arrive."""

    def __init__(self, metrics: GatewayMetrics | None = None) -> None:
        self._items: dict[str, Entry] = {}
        self._by_team: dict[str, dict[str, Entry]] = {}
        self._metrics = metrics
        self.rejected = 0
        if metrics is not None:
            for kind in FeedbackKind:
                metrics.feedback_open.labels(kind=kind.value)
                for transition in ("opened", "closed"):
                    metrics.feedback_items.labels(kind=kind.value, transition=transition)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, partition: int, offset: int, timestamp_ms: int, value: bytes | None) -> None:
        """Take one record of the topic (a tombstone forgets the item; an invalid value is counted, skipped)."""
        if value is None:
            return
        try:
            item = FIELD_FEEDBACK_ADAPTER.validate_json(value)
        except ValidationError:
            self.rejected += 1
            log.warning(
                "feedback record at partition %d offset %d is not a FieldFeedback v1; skipped", partition, offset
            )
            return
        old = self._items.get(item.item_id)
        entry = Entry(partition, offset, timestamp_ms, item)
        if old is not None and old.item.team != item.team:
            self._by_team.get(old.item.team, {}).pop(item.item_id, None)
        self._items[item.item_id] = entry
        self._by_team.setdefault(item.team, {})[item.item_id] = entry
        was_open = old is not None and old.item.status is FeedbackStatus.OPEN
        now_open = item.status is FeedbackStatus.OPEN
        if self._metrics is not None and (old is None or was_open != now_open):
            kind = item.kind.value
            self._metrics.feedback_items.labels(kind=kind, transition="opened" if now_open else "closed").inc()
            if now_open != was_open:
                self._metrics.feedback_open.labels(kind=kind).inc(1 if now_open else -1)

    def page(self, team: str, cursor: Cursor, limit: int) -> tuple[list[FieldFeedback], Cursor, bool]:
        """The team's items after `cursor` in (partition, offset) order, at most `limit`; the next cursor;
        whether more items follow."""
        after = cursor.offsets
        floor = cursor.min_timestamp_ms
        newer = sorted(
            (
                e
                for e in self._by_team.get(team, {}).values()
                if e.offset > after.get(e.partition, -1) and (floor is None or e.timestamp_ms >= floor)
            ),
            key=lambda e: (e.partition, e.offset),
        )
        shown = newer[:limit]
        offsets = dict(after)
        for e in shown:
            offsets[e.partition] = max(offsets.get(e.partition, -1), e.offset)
        return [e.item for e in shown], Cursor(offsets, floor), len(newer) > limit


class FeedbackSource(Protocol):
    """Port: keeps a `FeedbackIndex` filled from the topic; `ready()` once it caught up."""

    index: FeedbackIndex

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> bool: ...


class KafkaFeedbackReader:
    """Fills a `FeedbackIndex` from `field.feedback.v1` (all partitions, from the beginning, no group)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        index: FeedbackIndex,
        *,
        client_id: str = "regsosek-gateway",
        security: Mapping[str, Any] | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self.index = index
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_id = client_id
        self._security = dict(security or {})
        self._retry_s = retry_s
        self._caught_up = False
        self._task: asyncio.Task[None] | None = None

    def ready(self) -> bool:
        return self._caught_up

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feedback-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        # Until the broker answers: retry (the gateway still takes submissions meanwhile).
        while True:
            consumer = reader(self._bootstrap, client_id=f"{self._client_id}-feedback", **self._security)
            try:
                await consumer.start()
                await self._follow(consumer)
            except (KafkaError, OSError) as exc:
                log.warning("feedback topic %s not readable yet: %s", self._topic, type(exc).__name__)
            except Exception:  # never let the reader die silently: readiness would stay false for ever
                log.exception("feedback reader failed; restarting it")
            finally:
                await consumer.stop()
            await asyncio.sleep(self._retry_s)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        # A consumer without a subscription has no metadata of the topic it assigns: ask the admin API.
        partitions = (
            await topic_partitions(self._bootstrap, client_id=f"{self._client_id}-feedback", security=self._security)
        ).get(self._topic)
        if not partitions:
            raise KafkaError(f"topic {self._topic} not found")
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                for rec in records:
                    self.index.add(tp.partition, rec.offset, rec.timestamp, rec.value)
            if not self._caught_up and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                self._caught_up = True
                log.info("feedback index caught up: %d items", len(self.index))
