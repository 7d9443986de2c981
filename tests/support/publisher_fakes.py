"""Fakes of the publisher loop's Kafka ports (consumer group, acknowledging producer) over an in-memory broker,
and one batch of linkage outputs to feed them (unit tests of the write-ahead log, backfill and progress)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from contracts.linkage_outputs import to_canonical_json
from contracts.linkage_updates import UpdateEventType
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, UPDATES
from tests.support.publisher import (
    integrated_family,
    linked_member,
    update_event,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)


class _Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


@dataclass
class FakeBroker:
    """Input partitions, the group's committed offsets and everything acknowledged to subscribers."""

    inputs: dict[TopicPartition, list[_Record]] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    delivered: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def add(self, topic: str, key: str, value: bytes) -> None:
        tp = TopicPartition(topic, 0)
        rs = self.inputs.setdefault(tp, [])
        rs.append(_Record(topic, 0, len(rs), key.encode(), value, T0))

    def consumer(self) -> FakeConsumer:
        """A new group member: it starts at the committed offsets, like a restarted publisher."""
        return FakeConsumer(self)

    def message_ids(self) -> list[str]:
        return [json.loads(value)["message_id"] for _, _, value in self.delivered]


class FakeConsumer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.position = dict(broker.committed)

    def poll(self, timeout_ms: int = 0) -> Mapping[TopicPartition, list[_Record]]:
        batch = {}
        for tp, rs in self.broker.inputs.items():
            new = rs[self.position.get(tp, 0) :]
            if new:
                batch[tp] = new
                self.position[tp] = new[-1].offset + 1
        return batch

    def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        for tp, meta in (offsets or {}).items():
            self.broker.committed[tp] = meta.offset

    def assignment(self) -> set[TopicPartition]:
        return set(self.broker.inputs)

    def close(self) -> None:
        pass


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class FakeProducer:
    """Acknowledges the first `ack_limit` sends (all when None); later ones time out, undelivered."""

    def __init__(self, broker: FakeBroker, ack_limit: int | None = None) -> None:
        self.broker, self.ack_limit, self.attempts = broker, ack_limit, 0

    def send(self, topic: str, *, key: bytes, value: bytes, **_stamp: object) -> _Future:
        self.attempts += 1
        if self.ack_limit is not None and self.attempts > self.ack_limit:
            return _Future(KafkaTimeoutError("no acknowledgement"))
        self.broker.delivered.append((topic, key, value))
        return _Future(None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def seed_world(broker: FakeBroker) -> None:
    """One batch: a linked member in BPJS, its family, and a death update of a second member."""
    m1 = linked_member(1, nik="3603121505800002", bpjs_id="0001234567890")
    m2 = linked_member(2, nik="3603125505850003")
    broker.add(LINKED_MEMBERS, m1.member_key, to_canonical_json(m1))
    fam = integrated_family([m1, m2])
    broker.add(LINKED_FAMILIES, fam.family_key, to_canonical_json(fam))
    died = update_event(UpdateEventType.PERSON_DIED, m2, m2, change_id="c-died")
    broker.add(UPDATES, m2.member_key, to_canonical_json(died))


# kemensos + kemenkes about m1, kemensos + kemendikbud about the family, kemensos about the death.
EXPECTED = 5
