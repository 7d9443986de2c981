"""Kafka ACLs as values: a `Grant` (one ALLOW ACL), read from and written to a broker with kafka-python.

Which grants the system needs is decided elsewhere (`services.access.acl.plan`); this module only
translates grants to the client's ACL objects and back, and reads, creates and deletes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

Pattern = Literal["literal", "prefixed"]
Resource = Literal["topic", "group", "cluster", "transactional_id"]


class AclSyncError(RuntimeError):
    """The broker refused an ACL change; the message names the grant."""


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: `principal` may do `operation` on the resource (from any host)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: str

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        return f"{self.principal} {self.operation} {self.resource}:{self.name}{star}"


_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "cluster": ResourceType.CLUSTER,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {"literal": ACLResourcePatternType.LITERAL, "prefixed": ACLResourcePatternType.PREFIXED}


def to_acl(grant: Grant) -> ACL:
    """The kafka-python ALLOW ACL of `grant` (any host)."""
    return ACL(
        principal=grant.principal,
        host="*",
        operation=ACLOperation[grant.operation.upper()],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(_RESOURCE[grant.resource], grant.name, _PATTERN[grant.pattern]),
    )


def from_acl(acl: Any) -> Grant | None:
    """The grant of a kafka-python ACL, None for an ACL of a kind we do not manage."""
    # Only ALLOW grants on the resource kinds we manage; anything else is left alone.
    if acl.permission_type != ACLPermissionType.ALLOW or acl.host != "*":
        return None
    kinds = {v: k for k, v in _RESOURCE.items()}
    patterns = {v: k for k, v in _PATTERN.items()}
    rp = acl.resource_pattern
    if rp.resource_type not in kinds or rp.pattern_type not in patterns:
        return None
    return Grant(
        acl.principal,
        kinds[rp.resource_type],  # type: ignore[arg-type]
        rp.resource_name,
        patterns[rp.pattern_type],  # type: ignore[arg-type]
        acl.operation.name.lower(),
    )


def current_grants(admin: KafkaAdminClient) -> set[Grant]:
    """The broker's ALLOW grants (as far as they are of a kind we manage)."""
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    acls, error = admin.describe_acls(everything)
    if error.errno != 0:
        raise AclSyncError(f"describing ACLs failed: {error}")
    return {g for acl in acls if (g := from_acl(acl)) is not None}


def create_grants(admin: KafkaAdminClient, grants: Iterable[Grant]) -> None:
    """Create `grants` on the broker (raises `AclSyncError` naming the first refused one)."""
    result = admin.create_acls([to_acl(g) for g in grants])
    if result.get("failed"):
        acl, err = result["failed"][0]
        raise AclSyncError(f"creating ACL {from_acl(acl)} failed: {err}")


def delete_grants(admin: KafkaAdminClient, grants: Iterable[Grant]) -> None:
    """Delete `grants` from the broker (raises `AclSyncError` when the broker refuses)."""
    for _, _, error in admin.delete_acls([to_acl(g) for g in grants]):
        if error.errno != 0:
            raise AclSyncError(f"deleting ACLs failed: {error}")
