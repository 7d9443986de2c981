"""aiokafka clients of the async services (gateway, the linker's change and decision readers), with our defaults.

The same conventions as `clients` (kafka-python): consumers commit by hand or not at all, producers use
acks='all' and idempotent retries. `options` are passed on unchanged: SASL/TLS
(`KafkaSecurity.aiokafka_security()`) and tuning. The linker's consumer group itself runs on faust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = [
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "TopicPartition",
    "acknowledging_producer",
    "forget_fenced_errors",
    "reader",
    "topic_partitions",
    "transactional_producer",
]


def reader(bootstrap: str | list[str], *, client_id: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group: the caller assigns partitions and seeks; nothing is committed.
    Not started: `await consumer.start()`."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, client_id=client_id, group_id=None, enable_auto_commit=False, **options
    )


def acknowledging_producer(bootstrap: str, *, client_id: str, timeout_s: float, **options: Any) -> AIOKafkaProducer:
    """A producer with acks='all' and idempotent retries (the client's own retries never write a record
    twice); a request waits at most `timeout_s` (at least 1 s). Not started: `await producer.start()`."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=max(1000, int(timeout_s * 1000)),
        **options,
    )


def transactional_producer(
    bootstrap: str, *, client_id: str, transactional_id: str, timeout_s: float, **options: Any
) -> AIOKafkaProducer:
    """A transactional producer (acks='all', idempotent) with a fixed `transactional_id`.

    `await producer.start()` registers the id with the broker's transaction coordinator, which bumps the
    id's producer epoch: an open transaction of an older producer with the same id is aborted, and that
    producer is fenced (its next send or commit fails with `AioProducerFenced`, services.kafka.errors).
    Write with `begin_transaction()`, sends, `commit_transaction()`; readers that must not see aborted
    writes use `isolation_level='read_committed'`. A transaction open longer than `timeout_s` (at least
    10 s) is aborted by the broker."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        transactional_id=transactional_id,
        request_timeout_ms=max(1000, int(timeout_s * 1000)),
        transaction_timeout_ms=max(10_000, int(timeout_s * 1000)),
        **options,
    )


def forget_fenced_errors(producer: AIOKafkaProducer) -> None:
    """After a fenced transactional producer was handled: aiokafka 0.14 also leaves the fatal error on
    internal futures nobody awaits (the transaction's waiter, the failed batches' drain waiters), and
    asyncio prints their tracebacks when they are collected ("exception was never retrieved"). Mark
    them retrieved; nothing else changes."""
    txn = getattr(producer, "_txn_manager", None)
    waiters = [getattr(txn, "_transaction_waiter", None)]
    accumulator = getattr(producer, "_message_accumulator", None)
    batches = [b for bs in getattr(accumulator, "_batches", {}).values() for b in bs]
    batches.extend(getattr(accumulator, "_pending_batches", ()))
    waiters.extend(getattr(b, "_drain_waiter", None) for b in batches)
    for waiter in waiters:
        if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
            waiter.exception()


async def topic_partitions(
    bootstrap: str | list[str], *, client_id: str, security: Mapping[str, Any] | None = None
) -> dict[str, list[int]]:
    """Every topic the broker shows us, with its partition numbers (sorted), by aiokafka's public admin API.

    A consumer without a subscription (`group_id=None`, partitions assigned by hand) has no metadata of
    the topics it is about to assign; this asks the broker for all of them (asking for named topics
    could create them on a broker with `auto.create.topics.enable`). Raises `KafkaError` when the broker
    cannot be reached.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id, **dict(security or {}))
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described if t["error_code"] == 0}
