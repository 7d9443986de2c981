"""Create or change SCRAM-SHA-512 users on a running broker (AlterUserScramCredentials, KIP-554).

Neither installed client has an admin call for it (checked: kafka-python 2.3.3 `KafkaAdminClient` and
aiokafka 0.14 `AIOKafkaAdminClient` have no `alter_user_scram_credentials`, and neither defines the
request), so we send the protocol request ourselves with kafka-python's protocol types. confluent-kafka
has the call, but it would be a third Kafka client library for this one request; kept hand-built until
one of our clients offers it. The client salts and hashes the password (PBKDF2-HMAC-SHA512, as SCRAM defines the
salted password); the broker stores only the salted form, and the password never crosses the wire.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from kafka.admin import KafkaAdminClient
from kafka.protocol.api import Request, Response
from kafka.protocol.types import CompactArray, CompactBytes, CompactString, Int8, Int16, Int32, Schema, TaggedFields

SCRAM_SHA_512 = 2  # the mechanism code in the protocol (1 = SCRAM-SHA-256)
ITERATIONS = 8192  # the broker's minimum is 4096
_API_KEY = 51


class ScramError(RuntimeError):
    """The broker refused to store a credential; the message names the user and the broker's reason."""


class AlterUserScramCredentialsResponse_v0(Response):  # type: ignore[misc]  # noqa: N801 - kafka-python naming
    API_KEY = _API_KEY
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(Request):  # type: ignore[misc]  # noqa: N801
    API_KEY = _API_KEY
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("tags", TaggedFields),
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


def salted_password(password: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    """SCRAM's SaltedPassword: Hi(password, salt, i) = PBKDF2-HMAC-SHA512."""
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


def upsert_scram_users(admin: KafkaAdminClient, users: Mapping[str, str]) -> list[str]:
    """Create or update SCRAM-SHA-512 credentials for `users` (name -> password). Returns the names."""
    if not users:
        return []
    upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = []
    for name, password in sorted(users.items()):
        salt = secrets.token_bytes(32)
        upsertions.append((name, SCRAM_SHA_512, ITERATIONS, salt, salted_password(password, salt), {}))
    request = AlterUserScramCredentialsRequest_v0(deletions=[], upsertions=upsertions, tags={})
    response = admin.send_request(request)
    failed = [f"{user}: {message or code}" for user, code, message, _ in response.results if code != 0]
    if failed:
        raise ScramError("the broker refused SCRAM credentials for " + "; ".join(failed))
    return [user for user, _, _, _ in response.results]


def delete_scram_users(admin: KafkaAdminClient, names: list[str]) -> None:
    """Remove the SCRAM-SHA-512 credentials of `names` (a removed subscriber can no longer log in)."""
    if not names:
        return
    request = AlterUserScramCredentialsRequest_v0(
        deletions=[(n, SCRAM_SHA_512, {}) for n in sorted(names)], upsertions=[], tags={}
    )
    response = admin.send_request(request)
    failed = [f"{user}: {message or code}" for user, code, message, _ in response.results if code != 0]
    if failed:
        raise ScramError("the broker refused to delete SCRAM credentials for " + "; ".join(failed))
