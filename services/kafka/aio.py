"""aiokafka clients of the async services (gateway, the linker's change and decision readers), with our defaults.

The same conventions as `clients` (kafka-python): consumers commit by hand or not at all, producers use
acks='all' and idempotent retries. `options` are passed on unchanged: SASL/TLS
(`KafkaSecurity.aiokafka_security()`) and tuning. The linker's consumer group itself runs on faust.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = [
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "TopicPartition",
    "acknowledging_producer",
    "reader",
    "topic_partitions",
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
