"""kafka-python clients of the sync services (publisher, review ingest, backfill, readers), with our defaults.

Every consumer commits by hand (`enable_auto_commit=False`): offsets are committed only after a batch's
outputs are acknowledged, or never (readers outside a group). Every producer waits for all in-sync
replicas (`acks='all'`) and is idempotent (a retried send is not written twice, per-key order holds).
`options` are passed on unchanged: SASL/TLS (`KafkaSecurity.kafka_python_security()`) and tuning.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

__all__ = [
    "FETCH_LIMITS",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "TopicPartition",
    "acknowledging_producer",
    "group_consumer",
    "reader",
]


#: kafka-python 2.3 refuses a response frame above `receive_message_max_bytes` (1,000,000 by default) but
#: asks for up to `fetch_max_bytes` (52 MB by default) per fetch: a fetch over several busy partitions
#: comes back larger, the client closes the connection ("Invalid frame length") and fetches again. The
#: two limits are kept consistent for every consumer built here.
FETCH_LIMITS: dict[str, int] = {
    "fetch_max_bytes": 8 * 1024 * 1024,
    "receive_message_max_bytes": 8 * 1024 * 1024 + 64 * 1024,
}


def reader(bootstrap: str, *, client_id: str, **options: Any) -> KafkaConsumer:
    """A consumer outside any group: the caller assigns partitions and seeks; nothing is committed."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        **{**FETCH_LIMITS, **options},
    )


def group_consumer(bootstrap: str, *topics: str, group_id: str, client_id: str, **options: Any) -> KafkaConsumer:
    """A consumer of `topics` in `group_id`; a new group starts at the earliest offsets; commits by hand."""
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **{**FETCH_LIMITS, **options},
    )


def acknowledging_producer(
    bootstrap: str, *, client_id: str, timeout_s: float, linger_ms: int = 5, **options: Any
) -> KafkaProducer:
    """A producer with acks='all' and idempotent retries; a request waits at most `timeout_s`."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        request_timeout_ms=int(timeout_s * 1000),
        **options,
    )
