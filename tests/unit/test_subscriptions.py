"""Subscription registry: validation, the `regsosek subscriptions` CLI, projection and pseudonyms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from contracts.subscriptions import (
    FAMILY_FIELDS,
    PERSON_FIELDS,
    EventType,
    RecordType,
    Subscription,
    SubscriptionRegistry,
    notification_topic,
)
from integration.projection import matches_filters, project_family, project_person
from integration.pseudonyms import KeyRing, MissingSecretError, Pseudonymiser
from services.publisher.registry_file import RegistryFileError, load_registry, save_registry
from tests.support.publisher import (
    EXAMPLE_SECRETS,
    VALID_FROM,
    example_registry,
    example_subscriptions,
    integrated_family,
    linked_member,
)

NIK_1 = "3603121505800002"
NIK_2 = "3603125505850003"


def _sub(**changes: object) -> Subscription:
    base: dict[str, object] = {
        "subscriber_id": "kemensos",
        "purpose_code": "BANSOS",
        "purpose_text": "Social assistance targeting",
        "event_types": ["person_new"],
        "person_fields": ["decision"],
        "valid_from": VALID_FROM,
    }
    base.update(changes)
    return Subscription.model_validate(base)


def _error(**changes: object) -> str:
    with pytest.raises(ValidationError) as info:
        _sub(**changes)
    return str(info.value)


# ------------------------------------------------------------------------------------------ registry


def test_valid_subscription_is_normalised_and_knows_its_topic() -> None:
    sub = _sub(event_types=["link_created", "person_new", "person_new"], person_fields=["in_bpjs", "decision"])
    assert sub.event_types == (EventType.LINK_CREATED, EventType.PERSON_NEW)
    assert sub.person_fields == ("decision", "in_bpjs")
    assert sub.topic == "subscriber.kemensos.notifications.v1" == notification_topic("kemensos")
    assert sub.record_types() == {RecordType.PERSON}


def test_raw_identifiers_need_the_raw_nik_permission() -> None:
    assert "need may_receive_nik" in _error(person_fields=["nik", "decision"])
    assert "kk_number" in _error(event_types=["family_new"], person_fields=[], family_fields=["kk_number"])
    assert _sub(person_fields=["nik"], may_receive_nik=True).person_fields == ("nik",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subscriber_id": "Kemensos"}, "subscriber_id"),
        ({"subscriber_id": "a.b"}, "subscriber_id"),
        ({"purpose_code": "bansos"}, "purpose_code"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["paid"]}, "event_types"),
        ({"person_fields": ["full_name"]}, "unknown fields: full_name"),
        ({"event_types": ["family_new"]}, "no family_fields"),
        ({"person_fields": []}, "no person_fields"),
        ({"valid_until": datetime(2021, 1, 1, tzinfo=UTC)}, "valid_until must be after valid_from"),
        ({"valid_from": datetime(2022, 1, 1)}, "timezone"),
        ({"filters": {"region_codes": ["360"]}}, "2-digit province or 4-digit regency"),
        ({"filters": {"programmes": ["pkh"]}}, "programmes"),
        (
            {"event_types": ["family_new"], "family_fields": ["members"], "filters": {"programmes": ["bpjs"]}},
            "programme filters apply to person records only",
        ),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_subscriptions_are_rejected_with_the_reason(changes: dict[str, object], message: str) -> None:
    assert message in _error(**changes)


def test_validity_window() -> None:
    sub = _sub(valid_until=datetime(2023, 1, 1, tzinfo=UTC))
    assert not sub.active_at(datetime(2021, 12, 31, tzinfo=UTC))
    assert sub.active_at(VALID_FROM)
    assert not sub.active_at(datetime(2023, 1, 1, tzinfo=UTC))


def test_registry_versions_and_unique_ids(tmp_path: Path) -> None:
    empty = load_registry(tmp_path / "none.json")
    assert (empty.registry_version, empty.subscriptions) == (0, ())
    one = empty.with_added(_sub())
    two = one.with_added(_sub(subscriber_id="kemenkes"))
    assert [s.subscriber_id for s in two.subscriptions] == ["kemensos", "kemenkes"]
    assert two.registry_version == 2
    with pytest.raises(ValueError, match="already exists"):
        two.with_added(_sub())
    assert two.without("kemensos").registry_version == 3
    with pytest.raises(ValidationError, match="duplicate subscriber ids: kemensos"):
        SubscriptionRegistry(subscriptions=(_sub(), _sub()))
    path = tmp_path / "reg.json"
    save_registry(path, two)
    assert load_registry(path) == two
    path.write_text('{"schema_version": "1", "registry_version": -1}')
    with pytest.raises(RegistryFileError, match="registry_version"):
        load_registry(path)


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_add_list_remove(cli_app: typer.Typer, tmp_path: Path) -> None:
    reg = tmp_path / "subscriptions.json"
    runner = CliRunner()
    add = [
        "subscriptions",
        "add",
        "kemenkes",
        "--purpose-code",
        "PBI-JK",
        "--purpose",
        "PBI-JK contribution assistance verification",
        "--event",
        "person_new",
        "--event",
        "link_created",
        "--person-field",
        "decision",
        "--person-field",
        "in_bpjs",
        "--programme",
        "bpjs",
        "--valid-from",
        "2024-01-01",
        "--registry",
        str(reg),
    ]
    done = runner.invoke(cli_app, add)
    assert done.exit_code == 0, done.output
    assert "subscriber.kemenkes.notifications.v1 (registry version 1)" in done.output
    saved = json.loads(reg.read_text())
    assert saved["registry_version"] == 1
    (sub,) = saved["subscriptions"]
    assert sub["person_fields"] == ["decision", "in_bpjs"]
    assert sub["filters"] == {"region_codes": [], "programmes": ["bpjs"]}
    assert sub["valid_from"] == "2024-01-01T00:00:00Z"
    assert sub["may_receive_nik"] is False

    listed = runner.invoke(cli_app, ["subscriptions", "list", "--registry", str(reg)])
    assert listed.exit_code == 0
    assert "kemenkes" in listed.output and "PBI-JK" in listed.output and "person.in_bpjs" in listed.output

    again = runner.invoke(cli_app, add)
    assert again.exit_code == 2 and "already exists" in again.output

    removed = runner.invoke(cli_app, ["subscriptions", "remove", "kemenkes", "--registry", str(reg)])
    assert removed.exit_code == 0 and "registry version 2" in removed.output
    assert json.loads(reg.read_text())["subscriptions"] == []
    missing = runner.invoke(cli_app, ["subscriptions", "remove", "kemenkes", "--registry", str(reg)])
    assert missing.exit_code == 2 and "no subscription 'kemenkes'" in missing.output


def test_cli_add_from_json_and_missing_options(cli_app: typer.Typer, tmp_path: Path) -> None:
    reg, spec = tmp_path / "subscriptions.json", tmp_path / "kemendikbud.json"
    spec.write_text(example_subscriptions()[2].model_dump_json(exclude={"subscriber_id"}))
    runner = CliRunner()
    done = runner.invoke(
        cli_app, ["subscriptions", "add", "kemendikbud", "--from-json", str(spec), "--registry", str(reg)]
    )
    assert done.exit_code == 0, done.output
    # The JSON does not say `backfill`: the command's default (on) applies.
    assert load_registry(reg).subscriptions == (example_subscriptions()[2].model_copy(update={"backfill": True}),)
    bare = runner.invoke(cli_app, ["subscriptions", "add", "bkkbn", "--registry", str(reg)])
    assert bare.exit_code == 2 and "purpose_code" in bare.output


def test_cli_add_refuses_raw_nik_without_permission(cli_app: typer.Typer, tmp_path: Path) -> None:
    reg = tmp_path / "subscriptions.json"
    done = CliRunner().invoke(
        cli_app,
        [
            "subscriptions",
            "add",
            "kemensos",
            "--purpose-code",
            "BANSOS",
            "--purpose",
            "Social assistance",
            "--event",
            "person_new",
            "--person-field",
            "nik",
            "--registry",
            str(reg),
        ],
    )
    assert done.exit_code == 2
    assert "need may_receive_nik" in done.output
    assert not reg.exists()


# --------------------------------------------------------------------------------------- pseudonyms


def test_pseudonyms_are_stable_per_subscriber_and_differ_across_subscribers() -> None:
    ring = KeyRing(EXAMPLE_SECRETS)
    sos, kes = ring.for_subscriber("kemensos"), ring.for_subscriber("kemenkes")
    assert sos.person("p-abc") == sos.person("p-abc") == Pseudonymiser(EXAMPLE_SECRETS["kemensos"]).person("p-abc")
    assert sos.person("p-abc") != kes.person("p-abc")
    assert sos.person("p-abc") != sos.person("p-abd")
    assert sos.person("x") != sos.family("x")
    assert sos.person("p-abc").startswith("prs-") and len(sos.person("p-abc")) == 36
    with pytest.raises(MissingSecretError, match="no pseudonym secret for subscriber 'kemendagri'"):
        ring.for_subscriber("kemendagri")
    assert ring.missing(["kemensos", "bkkbn"]) == ["bkkbn"]
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymiser(b"short")


# --------------------------------------------------------------------------------------- projection


def test_projection_of_each_example_subscription_has_exactly_its_fields() -> None:
    ring = KeyRing(EXAMPLE_SECRETS)
    member = linked_member(1, nik=NIK_1, dtks_id="D-1", bpjs_id="0001234567890")
    family = integrated_family([member, linked_member(2, nik=None)])
    sos, kes, dik = example_subscriptions()
    sos_family_ref = ring.for_subscriber("kemensos").family(member.family_key)
    assert project_person(member, sos, ring.for_subscriber("kemensos")) == {
        "nik": NIK_1,
        "family_key": sos_family_ref,
        "decision": "linked",
        "in_dtks": True,
        "dtks_id": "D-1",
        "regency_code": "3603",
    }
    assert project_person(member, kes, ring.for_subscriber("kemenkes")) == {
        "decision": "linked",
        "in_bpjs": True,
        "bpjs_id": "0001234567890",
        "province_code": "36",
    }
    refs = [ring.for_subscriber("kemendikbud").person(m.person_id) for m in family.members]
    assert project_family(family, dik, ring.for_subscriber("kemendikbud")) == {
        "regency_code": "3603",
        "member_count": 2,
        "members": [
            {"serial": 1, "person_ref": refs[0], "decision": "linked"},
            {"serial": 2, "person_ref": refs[1], "decision": "not_linked"},
        ],
    }
    sos_family = project_family(family, sos, ring.for_subscriber("kemensos"))
    assert set(sos_family) == {"kk_number", "family_key", "members", "member_count", "deceased_in_master"}
    assert sos_family["kk_number"] == "3603121705150003"


def test_every_vocabulary_field_can_be_projected() -> None:
    ring = KeyRing(EXAMPLE_SECRETS)
    everything = _sub(
        event_types=["person_new", "family_new"],
        person_fields=sorted(PERSON_FIELDS),
        family_fields=sorted(FAMILY_FIELDS),
        may_receive_nik=True,
    )
    member = linked_member(1, nik=NIK_1)
    assert set(project_person(member, everything, ring.for_subscriber("kemensos"))) == PERSON_FIELDS
    family = integrated_family([member])
    assert set(project_family(family, everything, ring.for_subscriber("kemensos"))) == FAMILY_FIELDS


def test_filters_on_region_and_programme() -> None:
    sos, kes, dik = example_subscriptions()
    in_bpjs = linked_member(1, nik=NIK_1, bpjs_id="0001234567890")
    not_in_bpjs = linked_member(2, nik=NIK_2)
    assert matches_filters(kes, in_bpjs.family_key, in_bpjs)
    assert not matches_filters(kes, not_in_bpjs.family_key, not_in_bpjs)
    assert not matches_filters(kes, in_bpjs.family_key, None)
    assert matches_filters(dik, "3603010001000100001001", None)
    assert not matches_filters(dik, "3201010001000100001001", None)
    assert matches_filters(sos, "3201010001000100001001", not_in_bpjs)


def test_example_registry_round_trips_as_json() -> None:
    registry = example_registry()
    assert SubscriptionRegistry.model_validate_json(registry.model_dump_json()) == registry
    assert [s.subscriber_id for s in registry.subscriptions] == ["kemensos", "kemenkes", "kemendikbud"]
