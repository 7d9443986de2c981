"""Least-privilege ACLs for the services and every subscriber, derived from the catalogue and registry.

`plan` is pure: it lists the grants (principal, resource, pattern, operation) the system needs.
`sync` makes the broker's ALLOW ACLs of the *managed* principals equal to the plan: it creates what is
missing and deletes what the plan no longer has (e.g. a removed subscriber or team), and stores SCRAM
credentials for principals whose password it was given. Grants of other principals (made by hand by
an operator, e.g. a temporary read for a team not yet in the registry) are left alone.

Managed principals (`managed_principals`): the services, every subscriber and integration team in the
registry, and any principal holding a grant in the managed namespace (topics and groups with prefix
`subscriber.`, groups with prefix `integration.`), which is how a subscriber or team removed from the
registry is still recognised and loses every grant, its linkage-topic reads included.

Principals (SCRAM user names): `regsosek-gateway`, `regsosek-linker`, `regsosek-publisher`, each
subscriber id and each integration team id. A subscriber may read its own topic with consumer groups
named `subscriber.<id>.*`, and nothing else: no write anywhere, no other topic, no group of someone
else. An integration team may read the linkage topics it is registered for with consumer groups
named `integration.<id>.*`, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.subscriptions import SubscriptionRegistry, integration_group_prefix, reserved_subscriber_id
from contracts.topics import (
    BPJS_CHANGES,
    DTKS_CHANGES,
    FIELD_FEEDBACK,
    LINK_STATE_CHANGELOG,
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    POPULATION_CHANGES,
    REVIEW,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    UPDATES,
)
from services.kafka.acl import AclSyncError, Grant, Pattern, create_grants, current_grants, delete_grants
from services.kafka.admin import KafkaAdminClient
from services.kafka.scram import ScramError, delete_scram_users, upsert_scram_users

GATEWAY, LINKER, PUBLISHER = "regsosek-gateway", "regsosek-linker", "regsosek-publisher"
SERVICE_PRINCIPALS: tuple[str, ...] = (GATEWAY, LINKER, PUBLISHER)
#: The broker's super users in security mode (`super.users`; the development broker, tools/broker.py,
#: writes them): the operator's `admin` and the `ANONYMOUS` principal of the loopback PLAINTEXT listeners.
#: No subscriber may take these names (contracts.subscriptions.RESERVED_SUBSCRIBER_IDS).
BROKER_SUPER_USERS: tuple[str, ...] = ("User:admin", "User:ANONYMOUS")
#: Principals that are super users on the broker; never given or stripped of ACLs.
SUPER_USERS: frozenset[str] = frozenset(BROKER_SUPER_USERS)
#: Consumer group of the publisher; the linker's groups and internal topics start with its app id.
PUBLISHER_GROUP = "regsosek-publisher"
LINKER_APP_ID = "regsosek-linker"
#: Resources only `sync` hands out: (resource kind, name prefix). A grant on one marks a managed principal.
MANAGED_NAMESPACE: tuple[tuple[str, str], ...] = (
    ("topic", "subscriber."),
    ("group", "subscriber."),
    ("group", "integration."),
)


def subscriber_group_prefix(subscriber_id: str) -> str:
    """The prefix a subscriber's consumer group ids must start with."""
    return f"subscriber.{subscriber_id}."


def _topic(principal: str, name: str, *operations: str, pattern: Pattern = "literal") -> list[Grant]:
    return [Grant(f"User:{principal}", "topic", name, pattern, op) for op in operations]


def _group(principal: str, name: str, pattern: Pattern = "literal") -> list[Grant]:
    return [Grant(f"User:{principal}", "group", name, pattern, "read")]


def plan(registry: SubscriptionRegistry) -> list[Grant]:
    """Every grant the services and the registry's subscribers need, sorted."""
    # Also checked by the contract; here for registries built without validation (`model_copy`).
    supers = frozenset(p.removeprefix("User:") for p in SUPER_USERS)
    for principal in registry.principals():
        reason = reserved_subscriber_id(principal, supers)
        if reason is not None:  # the service principals all start with the reserved prefix
            raise AclSyncError(f"subscriber or team id {principal!r} is reserved: {reason}")
    grants: list[Grant] = []
    # The gateway appends submissions, and reads the field feedback it serves to teams (assigned
    # partitions, no consumer group: docs/feedback.md).
    grants += _topic(GATEWAY, SUBMISSIONS, "write", "describe")
    grants += _topic(GATEWAY, FIELD_FEEDBACK, "read", "describe")
    # The linker reads submissions and master/sectoral changes, writes the linkage outputs and the DLQ,
    # and owns its faust groups and internal (changelog/leader) topics, all prefixed by its app id.
    for source in (SUBMISSIONS, POPULATION_CHANGES, DTKS_CHANGES, BPJS_CHANGES):
        grants += _topic(LINKER, source, "read", "describe")
    for output in (SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW, UPDATES, FIELD_FEEDBACK):
        grants += _topic(LINKER, output, "write", "describe")
    # Its link-state changelog (services/linker/changelog.py): written by its batches, read to restore.
    grants += _topic(LINKER, LINK_STATE_CHANGELOG, "read", "write", "describe")
    grants += _topic(LINKER, LINKER_APP_ID, "read", "write", "create", "describe", pattern="prefixed")
    grants += _group(LINKER, LINKER_APP_ID, "prefixed")
    # Its changelog writes are transactions (the fence against a stale owner, docs/linker.md): one
    # transactional id per changelog partition, `<app id>.changelog.<p>`, under the same prefix.
    grants += [
        Grant(f"User:{LINKER}", "transactional_id", LINKER_APP_ID, "prefixed", op) for op in ("write", "describe")
    ]
    # The publisher reads the linkage outputs and writes only to subscriber topics.
    for source in (LINKED_MEMBERS, LINKED_FAMILIES, UPDATES):
        grants += _topic(PUBLISHER, source, "read", "describe")
    grants += _topic(PUBLISHER, "subscriber.", "write", "describe", pattern="prefixed")
    grants += _group(PUBLISHER, PUBLISHER_GROUP)
    # Each subscriber reads its own topic, nothing else.
    for sub in registry.subscriptions:
        grants += _topic(sub.subscriber_id, sub.topic, "read", "describe")
        grants += _group(sub.subscriber_id, subscriber_group_prefix(sub.subscriber_id), "prefixed")
    # Each integration team reads its registered linkage topics with its own groups, nothing else.
    for team in registry.integration_teams:
        for topic in team.topics:
            grants += _topic(team.team_id, topic, "read", "describe")
        grants += _group(team.team_id, integration_group_prefix(team.team_id), "prefixed")
    return sorted(set(grants))


def _in_managed_namespace(grant: Grant) -> bool:
    return any(grant.resource == kind and grant.name.startswith(prefix) for kind, prefix in MANAGED_NAMESPACE)


def stale_grants(registry: SubscriptionRegistry, existing: set[Grant]) -> list[Grant]:
    """The grants `sync` deletes: those of managed principals that the plan does not have (sorted).

    A hand-made grant of any other principal (e.g. `User:integration-dwh read topic:linkage.members.v1`
    before the team is registered) is not among them.
    """
    managed = managed_principals(registry, existing)
    return sorted(g for g in existing - set(plan(registry)) if g.principal in managed)


def managed_principals(registry: SubscriptionRegistry, existing: set[Grant]) -> set[str]:
    """The principals whose grants `sync` owns (module docstring); super users never."""
    managed = {f"User:{p}" for p in (*SERVICE_PRINCIPALS, *registry.principals())}
    managed |= {g.principal for g in existing if _in_managed_namespace(g)}
    return managed - SUPER_USERS


@dataclass
class SyncReport:
    """What `sync` changed."""

    created: list[Grant] = field(default_factory=list)
    deleted: list[Grant] = field(default_factory=list)
    unchanged: int = 0
    users_set: list[str] = field(default_factory=list)
    users_deleted: list[str] = field(default_factory=list)


def sync(admin: KafkaAdminClient, registry: SubscriptionRegistry, passwords: Mapping[str, str]) -> SyncReport:
    """Make the broker's grants equal to `plan(registry)`; set SCRAM passwords given in `passwords`."""
    desired = set(plan(registry))
    report = SyncReport()
    report.users_set = upsert_scram_users(admin, dict(passwords))
    existing = current_grants(admin)
    missing = sorted(desired - existing)
    extra = stale_grants(registry, existing)
    report.unchanged = len(desired & existing)
    if missing:
        create_grants(admin, missing)
        report.created = missing
    if extra:
        delete_grants(admin, extra)
        report.deleted = extra
    # Principals that lost every grant (removed subscribers) also lose their credentials.
    remaining = {g.principal for g in desired}
    gone = sorted({g.principal.removeprefix("User:") for g in extra if g.principal not in remaining})
    for user in gone:
        try:
            delete_scram_users(admin, [user])
            report.users_deleted.append(user)
        except ScramError:
            # A principal with ACLs but no credential (never given a password): nothing to delete.
            pass
    return report
