"""Reserved principals (the broker's super users, the service principals) are never subscriber ids."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from contracts.subscriptions import Subscription, SubscriptionRegistry, reserved_subscriber_id
from services.access.acl import SERVICE_PRINCIPALS, SUPER_USERS, plan
from services.kafka.acl import AclSyncError
from services.publisher.registry_file import RegistryFileError, load_registry, save_registry
from tests.support.publisher import example_subscriptions
from tools.broker import BrokerConfig, _security_properties

SUPER = "it is a super user of the broker"
SERVICE = "the prefix 'regsosek-' is reserved for service principals"


def _add(subscriber_id: str, reg: Path) -> list[str]:
    return [
        "subscriptions",
        "add",
        subscriber_id,
        "--purpose-code",
        "OPS",
        "--purpose",
        "Operator access",
        "--event",
        "person_new",
        "--person-field",
        "decision",
        "--registry",
        str(reg),
    ]


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    reg = tmp_path / "subscriptions.json"
    save_registry(reg, SubscriptionRegistry(registry_version=1, subscriptions=(example_subscriptions()[1],)))
    return reg


@pytest.mark.parametrize(
    ("subscriber_id", "reason"),
    [
        ("admin", SUPER),
        ("anonymous", SUPER),
        ("ANONYMOUS", SUPER),
        ("regsosek-linker", SERVICE),
        ("regsosek-publisher", SERVICE),
        ("regsosek-reports", SERVICE),
    ],
)
def test_cli_add_refuses_reserved_principals_with_one_line_and_exit_2(
    cli_app: typer.Typer, registry_file: Path, subscriber_id: str, reason: str
) -> None:
    before = registry_file.read_bytes()
    done = CliRunner().invoke(cli_app, _add(subscriber_id, registry_file))
    assert done.exit_code == 2
    assert done.output.splitlines() == [f"Error: subscriber id {subscriber_id!r} is reserved: {reason}"]
    assert registry_file.read_bytes() == before


def test_cli_add_refuses_super_users_the_broker_is_configured_with(cli_app: typer.Typer, registry_file: Path) -> None:
    before = registry_file.read_bytes()
    env = {"REGSOSEK_KAFKA_SUPER_USERS": "User:admin; User:ops-team"}
    done = CliRunner(env=env).invoke(cli_app, _add("ops-team", registry_file))
    assert done.exit_code == 2
    assert done.output.splitlines() == [f"Error: subscriber id 'ops-team' is reserved: {SUPER}"]
    flag = CliRunner().invoke(cli_app, [*_add("ops-team", registry_file), "--super-users", "User:ops-team"])
    assert flag.exit_code == 2
    assert registry_file.read_bytes() == before
    # Not over-eager: a name that merely contains a reserved one is an ordinary subscriber.
    ok = CliRunner(env=env).invoke(cli_app, _add("admin-kependudukan", registry_file))
    assert ok.exit_code == 0, ok.output
    assert [s.subscriber_id for s in load_registry(registry_file).subscriptions] == ["kemenkes", "admin-kependudukan"]


def test_the_contract_refuses_reserved_ids_in_a_hand_edited_registry(tmp_path: Path) -> None:
    doc = example_subscriptions()[0].model_dump(mode="json") | {"subscriber_id": "admin"}
    with pytest.raises(ValidationError, match="subscriber id 'admin' is reserved"):
        Subscription.model_validate(doc)
    reg = tmp_path / "subscriptions.json"
    reg.write_text(
        SubscriptionRegistry(subscriptions=(example_subscriptions()[0],))
        .model_dump_json()
        .replace('"kemensos"', '"regsosek-gateway"')
    )
    with pytest.raises(RegistryFileError, match="reserved for service principals"):
        load_registry(reg)
    # Defence in depth: `acl sync` refuses a registry built without validation.
    sneaked = example_subscriptions()[0].model_copy(update={"subscriber_id": "admin"})
    with pytest.raises(AclSyncError, match="'admin' is reserved"):
        plan(SubscriptionRegistry.model_construct(subscriptions=(sneaked,)))


def test_every_super_user_and_service_principal_of_the_project_is_reserved() -> None:
    rendered = _security_properties(BrokerConfig(sasl_port=1))
    (line,) = [x for x in rendered.splitlines() if x.startswith("super.users=")]
    configured = set(line.removeprefix("super.users=").split(";"))
    assert configured == set(SUPER_USERS) == {"User:admin", "User:ANONYMOUS"}
    for principal in sorted(configured):
        assert reserved_subscriber_id(principal.removeprefix("User:")) == SUPER
    for principal in SERVICE_PRINCIPALS:
        assert reserved_subscriber_id(principal) == SERVICE
    assert reserved_subscriber_id("kemensos") is None
