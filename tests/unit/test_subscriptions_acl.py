"""The ACL plan derived from the registry (pure; the real-broker proofs are in tests/integration/test_acl.py)."""

from __future__ import annotations

import pytest

from contracts.subscriptions import SubscriptionRegistry
from services.access.acl import plan
from services.kafka.acl import AclSyncError, Grant
from tests.support.publisher import example_registry, example_subscriptions


def test_plan_gives_each_subscriber_read_on_its_own_topic_only() -> None:
    grants = plan(example_registry())
    assert [g for g in grants if g.principal == "User:kemenkes"] == [
        Grant("User:kemenkes", "group", "subscriber.kemenkes.", "prefixed", "read"),
        Grant("User:kemenkes", "topic", "subscriber.kemenkes.notifications.v1", "literal", "describe"),
        Grant("User:kemenkes", "topic", "subscriber.kemenkes.notifications.v1", "literal", "read"),
    ]
    principals = {g.principal for g in grants}
    assert principals == {
        "User:regsosek-gateway",
        "User:regsosek-linker",
        "User:regsosek-publisher",
        "User:kemensos",
        "User:kemenkes",
        "User:kemendikbud",
    }


def test_services_get_only_their_topics() -> None:
    grants = plan(SubscriptionRegistry())
    gateway = {(g.name, g.operation) for g in grants if g.principal == "User:regsosek-gateway"}
    assert gateway == {
        ("regsosek.submissions.v1", "write"),
        ("regsosek.submissions.v1", "describe"),
        ("field.feedback.v1", "read"),
        ("field.feedback.v1", "describe"),
    }
    linker_writes = {g.name for g in grants if g.principal == "User:regsosek-linker" and g.operation == "write"}
    assert "field.feedback.v1" in linker_writes
    publisher_writes = {
        (g.name, g.pattern) for g in grants if g.principal == "User:regsosek-publisher" and g.operation == "write"
    }
    assert publisher_writes == {("subscriber.", "prefixed")}
    publisher_reads = {g.name for g in grants if g.principal == "User:regsosek-publisher" and g.operation == "read"}
    assert publisher_reads == {"linkage.members.v1", "linkage.families.v1", "linkage.updates.v1", "regsosek-publisher"}
    assert not any(g.operation in ("all", "alter", "delete") for g in grants)


def test_subscriber_ids_may_not_impersonate_services() -> None:
    sub = example_subscriptions()[0].model_copy(update={"subscriber_id": "regsosek-linker"})
    with pytest.raises(AclSyncError, match="reserved for service principals"):
        plan(SubscriptionRegistry(subscriptions=(sub,)))
