"""A kafka-python admin client (topics, ACLs, SCRAM users, consumer groups), for sync tools and commands."""

from __future__ import annotations

from typing import Any

from kafka.admin import KafkaAdminClient

__all__ = ["KafkaAdminClient", "admin_client"]


def admin_client(bootstrap: str, *, client_id: str, timeout_s: float = 15.0, **security: Any) -> KafkaAdminClient:
    """An admin client of `bootstrap`; `security`: kafka-python SASL/TLS options (none on PLAINTEXT).

    Raises kafka-python's `KafkaError` or `OSError` when the broker cannot be reached; close it after use.
    """
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=int(timeout_s * 1000), **security
    )
