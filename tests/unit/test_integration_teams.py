"""Integration teams in the registry: contract, `teams` CLI, ACL plan, and which grants `acl sync` owns
(the real-broker proof is in tests/integration/test_acl_teams.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from contracts.subscriptions import IntegrationTeam, SubscriptionRegistry
from services.access.acl import managed_principals, plan, stale_grants
from services.kafka.acl import Grant
from services.publisher.registry_file import load_registry, save_registry
from tests.support.publisher import example_registry

DWH = IntegrationTeam(
    team_id="integration-dwh",
    purpose_text="Data warehouse of the integration team",
    topics=("linkage.members.v1", "linkage.families.v1"),
)


def test_plan_gives_a_team_read_on_its_topics_and_its_groups_only() -> None:
    grants = plan(example_registry().with_team(DWH))
    assert [g for g in grants if g.principal == "User:integration-dwh"] == [
        Grant("User:integration-dwh", "group", "integration.integration-dwh.", "prefixed", "read"),
        Grant("User:integration-dwh", "topic", "linkage.families.v1", "literal", "describe"),
        Grant("User:integration-dwh", "topic", "linkage.families.v1", "literal", "read"),
        Grant("User:integration-dwh", "topic", "linkage.members.v1", "literal", "describe"),
        Grant("User:integration-dwh", "topic", "linkage.members.v1", "literal", "read"),
    ]


def test_the_contract_refuses_unknown_topics_reserved_and_duplicate_ids() -> None:
    with pytest.raises(ValidationError, match="not a linkage topic an integration team may read: regsosek.sub"):
        IntegrationTeam(team_id="dwh", purpose_text="A data warehouse team", topics=("regsosek.submissions.v1",))
    with pytest.raises(ValidationError, match="team id 'regsosek-dwh' is reserved"):
        IntegrationTeam(team_id="regsosek-dwh", purpose_text="A data warehouse team", topics=("linkage.members.v1",))
    with pytest.raises(ValueError, match="'kemensos' already exists as a subscriber or team"):
        example_registry().with_team(DWH.model_copy(update={"team_id": "kemensos"}))
    with pytest.raises(ValidationError, match="duplicate subscriber or team ids: kemensos"):
        SubscriptionRegistry.model_validate(
            {
                **example_registry().model_dump(mode="json"),
                "integration_teams": [{**DWH.model_dump(mode="json"), "team_id": "kemensos"}],
            }
        )


def test_a_registry_without_teams_is_written_as_before(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.json"
    save_registry(path, example_registry())
    assert "integration_teams" not in path.read_text()
    save_registry(path, example_registry().with_team(DWH))
    assert load_registry(path).integration_teams == (DWH,)
    assert load_registry(path).registry_version == 4


def _grant(principal: str, resource: str, name: str, pattern: str = "literal", op: str = "read") -> Grant:
    return Grant(f"User:{principal}", resource, name, pattern, op)  # type: ignore[arg-type]


def test_sync_owns_managed_principals_and_leaves_hand_made_grants_alone() -> None:
    registry = example_registry().with_team(DWH)
    desired = set(plan(registry))
    hand_made = {
        _grant("integration-bi", "topic", "linkage.members.v1"),  # a team not (yet) in the registry
        _grant("integration-bi", "group", "bi-reports", "prefixed"),
        _grant("ops-monitor", "cluster", "kafka-cluster", op="describe"),
    }
    removed_team = {
        _grant("integration-old", "topic", "linkage.updates.v1"),
        _grant("integration-old", "group", "integration.integration-old.", "prefixed"),
    }
    removed_subscriber = {
        _grant("kemenpora", "topic", "subscriber.kemenpora.notifications.v1"),
        _grant("kemenpora", "group", "subscriber.kemenpora.", "prefixed"),
    }
    widened = {
        _grant("kemensos", "topic", "linkage.members.v1"),
        _grant("integration-dwh", "topic", "linkage.review.v1"),
    }
    foreign_on_ours = {_grant("someone", "topic", "subscriber.kemensos.notifications.v1")}
    supers = {Grant("User:admin", "group", "subscriber.x.", "prefixed", "read")}
    existing = desired | hand_made | removed_team | removed_subscriber | widened | foreign_on_ours | supers
    assert set(stale_grants(registry, existing)) == removed_team | removed_subscriber | widened | foreign_on_ours
    managed = managed_principals(registry, existing)
    assert "User:integration-bi" not in managed and "User:ops-monitor" not in managed and "User:admin" not in managed
    assert {"User:integration-old", "User:kemenpora", "User:integration-dwh"} <= managed


def test_teams_cli_adds_lists_and_removes(cli_app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.json"
    save_registry(path, example_registry())
    runner = CliRunner()
    reg = ["--registry", str(path)]
    topics = ["--topic", "linkage.members.v1", "--topic", "linkage.families.v1"]
    added = runner.invoke(
        cli_app, ["teams", "add", "integration-dwh", "--purpose", "Data warehouse loads", *topics, *reg]
    )
    assert added.exit_code == 0, added.output
    assert added.output.strip() == (
        "added team integration-dwh: read linkage.families.v1, linkage.members.v1, "
        "groups integration.integration-dwh.* (registry version 4)"
    )
    assert "integration-dwh" in runner.invoke(cli_app, ["teams", "list", *reg]).output
    before = path.read_bytes()
    for reserved in ("admin", "regsosek-linker", "ANONYMOUS"):
        done = runner.invoke(
            cli_app,
            ["teams", "add", reserved, "--purpose", "Data warehouse loads", "--topic", "linkage.members.v1", *reg],
        )
        assert done.exit_code == 2
        assert len(done.output.strip().splitlines()) == 1 and f"team id {reserved!r} is reserved" in done.output
    wrong = runner.invoke(
        cli_app, ["teams", "add", "bi", "--purpose", "Data warehouse loads", "--topic", "regsosek.submissions.v1", *reg]
    )
    assert wrong.exit_code == 2
    assert path.read_bytes() == before
    removed = runner.invoke(cli_app, ["teams", "remove", "integration-dwh", *reg])
    assert removed.exit_code == 0 and load_registry(path).integration_teams == ()
    assert runner.invoke(cli_app, ["teams", "remove", "integration-dwh", *reg]).exit_code == 2
