"""Thin Kafka I/O adapters (kafka-python): a producer that returns only once the broker acknowledged, and a reader.

Values are JSON bytes. A pydantic model is serialised with `model_dump_json()` so what goes on the
wire is exactly what the contract exports; raw bytes are sent unchanged (dead letters keep the
original payload byte for byte). Errors never include the payload: it can hold NIKs and names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError
from pydantic import BaseModel

from contracts.partitioning import producer_partitioner
from services.kafka.clients import acknowledging_producer, reader
from services.kafka.record import Delivered, KafkaRecord

Value = bytes | BaseModel | dict[str, Any]


class ProduceError(RuntimeError):
    """The broker did not acknowledge a record (or could not be reached)."""


def compacted_state(records: Iterable[KafkaRecord]) -> dict[str, bytes]:
    """What a compacted topic holds: the latest value per key (records in offset order), tombstones removed."""
    latest: dict[str, bytes | None] = {}
    for r in records:  # one key lives on one partition, so offset order is the key's order
        if r.key is None:
            raise ValueError(f"a record without a key at {r.topic}[{r.partition}]@{r.offset}")
        latest[r.key.decode()] = r.value
    return {k: v for k, v in latest.items() if v is not None}


def values_by_key(records: Iterable[KafkaRecord]) -> dict[str, list[bytes]]:
    """Every value per key in offset order (records without a key or value are an error)."""
    out: dict[str, list[bytes]] = {}
    for r in records:
        if r.key is None or r.value is None:
            raise ValueError(f"a record without a key or value at {r.topic}[{r.partition}]@{r.offset}")
        out.setdefault(r.key.decode(), []).append(r.value)
    return out


def to_bytes(value: Value) -> bytes:
    """The JSON bytes sent for `value` (bytes pass through unchanged)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class JsonProducer:
    """A kafka-python producer with acks='all' and idempotent retries; use as a context manager."""

    def __init__(
        self, bootstrap: str, *, client_id: str = "regsosek", timeout_s: float = 30.0, **security: Any
    ) -> None:
        self.timeout_s = timeout_s
        try:
            self._producer = acknowledging_producer(
                bootstrap,
                client_id=client_id,
                timeout_s=timeout_s,
                # Member keys go to their family's partition (contracts.partitioning).
                partitioner=producer_partitioner,
                **security,  # SASL/TLS options (services.kafka.security), none on the PLAINTEXT listener
            )
        except (KafkaError, OSError) as exc:
            raise ProduceError(f"cannot connect a producer to {bootstrap}: {exc}") from exc

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: Value,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> Delivered:
        """Write one record and wait for the broker's acknowledgement (`headers`, `timestamp_ms`: the
        record's CloudEvents headers and event time, `services.kafka.events`; None: none and the clock)."""
        raw_key = key.encode() if isinstance(key, str) else key
        try:
            future = self._producer.send(
                topic, key=raw_key, value=to_bytes(value), headers=headers, timestamp_ms=timestamp_ms
            )
            self._producer.flush(timeout=self.timeout_s)
            meta = future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise ProduceError(f"the broker did not acknowledge a record on {topic}: {exc}") from exc
        return Delivered(meta.topic, meta.partition, meta.offset)

    def send_many(self, topic: str, records: Iterable[tuple[str | bytes | None, Value]]) -> list[Delivered]:
        """Write records in order, then wait until every one is acknowledged (raises on the first failure)."""
        futures = []
        for key, value in records:
            raw_key = key.encode() if isinstance(key, str) else key
            try:
                futures.append(self._producer.send(topic, key=raw_key, value=to_bytes(value)))
            except KafkaError as exc:
                raise ProduceError(f"sending to {topic} failed: {exc}") from exc
        self._producer.flush(timeout=self.timeout_s)
        delivered = []
        for future in futures:
            try:
                meta = future.get(timeout=self.timeout_s)
            except KafkaError as exc:
                raise ProduceError(f"the broker did not acknowledge a record on {topic}: {exc}") from exc
            delivered.append(Delivered(meta.topic, meta.partition, meta.offset))
        return delivered

    def close(self) -> None:
        """Flush and close the underlying producer."""
        self._producer.close(timeout=self.timeout_s)

    def __enter__(self) -> JsonProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = 30.0, security: Mapping[str, Any] | None = None
) -> list[KafkaRecord]:
    """Everything in `topic` up to its end at the time of the call, in (partition, offset) order.

    No consumer group (partitions are assigned directly), so nothing is committed and a read can be
    repeated. With acks='all' an acknowledged record is below the end offset, so a read right after a
    send sees it. Raises TimeoutError if the end is not reached within `timeout_s`. `security`: kafka-python
    SASL/TLS options (`KafkaSecurity.kafka_python_security()`).
    """
    consumer = reader(bootstrap, client_id="regsosek-reader", **dict(security or {}))
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise KeyError(f"topic {topic!r} does not exist on {bootstrap}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = {tp: off for tp, off in consumer.end_offsets(assigned).items() if off > 0}
        records: list[KafkaRecord] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < off for tp, off in end.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end within {timeout_s:.0f} s")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records.extend(KafkaRecord.of(r) for r in batch if r.offset < end.get(tp, 0))
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()
