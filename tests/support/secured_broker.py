"""A secured broker (SASL/SCRAM-SHA-512 + ACLs) as the access-control tests see it, and what they do on it.

The fixtures that start it and apply `regsosek acl sync` (`secured`, `synced`) are in
tests/integration/conftest.py; these are their value type and helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from typer.testing import CliRunner

from services.kafka.security import scram_options
from tools import broker as broker_service

DENIED = "denied"
DENIED = "denied"


@dataclass(frozen=True)
class SecuredBroker:
    """The secured broker as the tests see it."""

    config: broker_service.BrokerConfig
    sasl: str  # the SASL_PLAINTEXT listener
    passwords: dict[str, str]  # principal -> password, generated for this run
    registry_path: Path
    credentials_dir: Path
    start_output: str  # what `python -m tools broker start --secured` printed

    def security(self, user: str, password: str | None = None) -> dict[str, Any]:
        return scram_options(user, password if password is not None else self.passwords[user])


def acl_sync(cli_app: typer.Typer, broker: SecuredBroker, *extra: str) -> str:
    done = CliRunner().invoke(
        cli_app,
        ["acl", "sync", "--bootstrap", broker.sasl, "--registry", str(broker.registry_path), *extra],
        env={"REGSOSEK_ACL_ADMIN_PASSWORD": broker.passwords["admin"]},
    )
    assert done.exit_code == 0, done.output
    return done.output


class Producer:
    def __init__(self, broker: SecuredBroker, user: str, password: str | None = None) -> None:
        self._p = KafkaProducer(
            bootstrap_servers=broker.sasl,
            acks="all",
            max_block_ms=8000,
            request_timeout_ms=8000,
            **broker.security(user, password),
        )

    def send(self, topic: str, **kw: object):  # type: ignore[no-untyped-def]
        return self._p.send(topic, **kw)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._p.close(timeout=5)


def producer_as(broker: SecuredBroker, user: str) -> Producer:
    return Producer(broker, user)


def write_as(broker: SecuredBroker, user: str, topic: str) -> str:
    """'ok' if `user` could write one record to `topic`, 'denied' on an authorization error."""
    try:
        with producer_as(broker, user) as producer:
            producer.send(topic, key=b"k", value=b"{}", partition=0).get(timeout=10)
        return "ok"
    except KafkaError as exc:
        return DENIED if "Authorization" in type(exc).__name__ else f"other:{type(exc).__name__}"


def read_as(broker: SecuredBroker, user: str, topic: str, group: str | None = None) -> str:
    """'ok' if `user` read at least one record of `topic` (partition 0), 'denied' on an authorization error."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.sasl,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=12000,
        session_timeout_ms=6000,
        **broker.security(user),
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        for _ in range(20):
            if consumer.poll(timeout_ms=500).get(tp):
                if group is not None:
                    consumer.commit()  # needs READ on the group
                return "ok"
            # kafka-python logs a metadata authorization failure instead of raising it from poll().
            if topic in consumer._client.cluster.unauthorized_topics:
                return DENIED
        return "empty"
    except KafkaError as exc:
        return DENIED if "Authorization" in type(exc).__name__ else f"other:{type(exc).__name__}"
    finally:
        consumer.close()
