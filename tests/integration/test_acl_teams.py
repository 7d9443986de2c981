"""Integration teams on a REAL secured broker (SASL/SCRAM + StandardAuthorizer), managed by `acl sync`.

The secured-broker fixtures of tests/integration/conftest.py (a separate broker for this module): a
registered team consumes `linkage.members.v1` with its own consumer group and is denied subscriber
topics, raw submissions and other groups; a grant made by hand for a principal `acl sync` does not
manage survives every sync, while a removed team loses its grants and login.
"""

from __future__ import annotations

import secrets

import pytest
import typer
from kafka.admin import ACL, ACLPermissionType, KafkaAdminClient, ResourcePattern, ResourceType
from kafka.admin import ACLOperation as Op

from contracts.subscriptions import IntegrationTeam
from contracts.topics import LINKED_MEMBERS, SUBMISSIONS
from services.kafka.acl import Grant, current_grants
from services.publisher.registry_file import load_registry, save_registry
from tests.support.secured_broker import DENIED, SecuredBroker, acl_sync, read_as

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TEAM = IntegrationTeam(
    team_id="integration-dwh", purpose_text="Loads the linkage outputs into the warehouse", topics=(LINKED_MEMBERS,)
)
HAND_MADE = Grant("User:integration-bi", "topic", LINKED_MEMBERS, "literal", "read")


def _admin(broker: SecuredBroker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.sasl, request_timeout_ms=15000, **broker.security("admin"))


def test_team_reads_its_linkage_topic_and_hand_made_grants_survive_sync(
    synced: SecuredBroker,
    cli_app: typer.Typer,
) -> None:
    admin = _admin(synced)
    try:
        # An operator's hand-made grant for a team that is not in the registry.
        result = admin.create_acls(
            [
                ACL(
                    HAND_MADE.principal,
                    "*",
                    Op.READ,
                    ACLPermissionType.ALLOW,
                    ResourcePattern(ResourceType.TOPIC, LINKED_MEMBERS),
                )
            ]
        )
        assert not result["failed"]
        registry = load_registry(synced.registry_path)
        save_registry(synced.registry_path, registry.with_team(TEAM))
        synced.passwords[TEAM.team_id] = secrets.token_urlsafe(18)
        (synced.credentials_dir / f"{TEAM.team_id}.password").write_text(synced.passwords[TEAM.team_id])
        out = acl_sync(cli_app, synced, "--credentials-dir", str(synced.credentials_dir))
        assert "user set        integration-dwh" in out
        assert "acl created     User:integration-dwh read topic:linkage.members.v1" in out
        assert "acl created     User:integration-dwh read group:integration.integration-dwh.*" in out
        assert "acl deleted" not in out
        assert HAND_MADE in current_grants(admin)

        group = "integration.integration-dwh.loader"
        assert read_as(synced, TEAM.team_id, LINKED_MEMBERS, group=group) == "ok"
        assert read_as(synced, TEAM.team_id, "subscriber.kemensos.notifications.v1", group=group) == DENIED
        assert read_as(synced, TEAM.team_id, SUBMISSIONS) == DENIED
        assert read_as(synced, TEAM.team_id, LINKED_MEMBERS, group="subscriber.kemensos.x") == DENIED

        # Removing the team removes its grants and login; the hand-made grant is still not touched.
        save_registry(synced.registry_path, registry)
        out = acl_sync(cli_app, synced)
        assert "acl deleted     User:integration-dwh read topic:linkage.members.v1" in out
        assert "acl deleted     User:integration-dwh read group:integration.integration-dwh.*" in out
        assert "user deleted    integration-dwh" in out
        assert "integration-bi" not in out
        grants = current_grants(admin)
        assert HAND_MADE in grants and not any(g.principal == "User:integration-dwh" for g in grants)
    finally:
        admin.close()
