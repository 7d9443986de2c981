"""Topic provisioning against the real broker: create all, idempotent re-run, differences reported."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
import typer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from typer.testing import CliRunner

from contracts.topics import (
    CATALOGUE,
    DISTRICT_PARTITIONED,
    LINK_STATE_CHANGELOG,
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    SUBMISSIONS,
    TOMBSTONE_RETENTION_MS,
    TopicSpec,
    catalogue_with,
)
from services.kafka import topics

if TYPE_CHECKING:
    from tests.support.broker import ProvisionedBroker, RunningBroker

pytestmark = pytest.mark.broker

ALL_NAMES = [spec.name for spec in CATALOGUE]


def test_first_provisioning_creates_every_catalogue_topic(kafka_topics: ProvisionedBroker) -> None:
    report = kafka_topics.first_report
    assert report.created == ALL_NAMES
    assert report.unchanged == [] and report.missing == [] and report.differences == []


def test_topics_have_the_catalogue_partitions_and_cleanup_policy(kafka_topics: ProvisionedBroker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_topics.bootstrap)
    try:
        described = {t["topic"]: len(t["partitions"]) for t in admin.describe_topics(ALL_NAMES)}
    finally:
        admin.close()
    assert described == {spec.name: spec.partitions for spec in CATALOGUE}
    assert described[SUBMISSIONS] == 4
    # check() reads cleanup.policy and retention.ms back from the broker and finds nothing to report.
    report = topics.check(kafka_topics.bootstrap)
    assert report.ok and report.unchanged == ALL_NAMES
    assert next(s for s in CATALOGUE if s.name == LINKED_MEMBERS).cleanup_policy == "compact"


def test_second_provisioning_is_a_no_op(kafka_topics: ProvisionedBroker) -> None:
    report = topics.provision(kafka_topics.bootstrap)
    assert report.created == []
    assert report.unchanged == ALL_NAMES
    assert report.ok


def test_a_wrong_pre_existing_topic_is_reported_not_changed(kafka_broker: RunningBroker) -> None:
    name = "test.wrongly.made.v1"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "delete"})])
        made = TopicSpec(name, 1, "delete", 604800000, key="k", value_schema="V", description="d")
        topics._wait_visible(admin, [made])  # as someone else's tool would have left it: fully created
        expected = TopicSpec(name, 3, "compact", -1, key="k", value_schema="V", description="d")
        report = topics.provision(kafka_broker.bootstrap, [expected])
        after = {t["topic"]: len(t["partitions"]) for t in admin.describe_topics([name])}
    finally:
        admin.close()
    assert report.created == [] and report.unchanged == []
    assert [(d.topic, d.setting, d.expected, d.actual) for d in report.differences] == [
        (name, "partitions", "3", "1"),
        (name, "cleanup.policy", "compact", "delete"),
        (name, "retention.ms", "-1", "604800000"),
    ]
    assert not report.ok
    assert after == {name: 1}  # reported, never silently altered


def _delete_retention(bootstrap: str, names: list[str]) -> dict[str, str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"delete.retention.ms": None}) for n in names]
        found = {}
        for response in admin.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
                found[resource["resource_name"]] = entries["delete.retention.ms"]
        return found
    finally:
        admin.close()


def test_compacted_topics_keep_tombstones_for_the_catalogue_time(kafka_topics: ProvisionedBroker) -> None:
    # Not the broker's default of 1 day: weekly consumers must still see a deletion (docs/consuming.md).
    assert TOMBSTONE_RETENTION_MS == 8 * 24 * 3600 * 1000
    found = _delete_retention(kafka_topics.bootstrap, [LINKED_MEMBERS, LINKED_FAMILIES, SUBMISSIONS])
    assert found == {LINKED_MEMBERS: "691200000", LINKED_FAMILIES: "691200000", SUBMISSIONS: "86400000"}


def test_a_compacted_topic_with_the_default_tombstone_time_is_reported(kafka_broker: RunningBroker) -> None:
    # A members topic provisioned before the catalogue set delete.retention.ms: check says so, and
    # provisioning leaves it for the operator (docs/consuming.md gives the kafka-configs command).
    name = "test.old.compacted.v1"
    old = TopicSpec(name, 1, "compact", -1, key="k", value_schema="V", description="d")
    topics.provision(kafka_broker.bootstrap, [old])
    now = TopicSpec(
        name,
        1,
        "compact",
        -1,
        key="k",
        value_schema="V",
        description="d",
        tombstone_retention_ms=TOMBSTONE_RETENTION_MS,
    )
    for report in (topics.check(kafka_broker.bootstrap, [now]), topics.provision(kafka_broker.bootstrap, [now])):
        assert [str(d) for d in report.differences] == [
            f"{name}: delete.retention.ms is 86400000, catalogue says 691200000"
        ]
    assert _delete_retention(kafka_broker.bootstrap, [name]) == {name: "86400000"}


def test_check_reports_a_missing_topic(kafka_broker: RunningBroker) -> None:
    spec = TopicSpec("test.never.created.v1", 1, "delete", 1000, key="k", value_schema="V", description="d")
    report = topics.check(kafka_broker.bootstrap, [spec])
    assert report.missing == ["test.never.created.v1"]
    assert report.created == [] and not report.ok


def test_cli_topics_check_passes_on_a_provisioned_broker(kafka_topics: ProvisionedBroker, cli_app: typer.Typer) -> None:
    result = CliRunner().invoke(cli_app, ["topics", "check", "--bootstrap", kafka_topics.bootstrap])
    assert result.exit_code == 0, result.output
    assert f"ok        {SUBMISSIONS}" in result.output
    assert result.output.count("ok  ") == len(CATALOGUE)


def test_cli_reports_an_unreachable_broker_without_a_traceback(cli_app: typer.Typer) -> None:
    result = CliRunner().invoke(cli_app, ["topics", "check", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 1
    assert "cannot reach the Kafka broker at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_check_with_a_deployment_partition_count_reports_each_district_topic(
    kafka_topics: ProvisionedBroker, cli_app: typer.Typer
) -> None:
    # The broker has the catalogue's 4; a deployment that asks for 8 is told which topics differ.
    report = topics.check(kafka_topics.bootstrap, catalogue_with(8))
    assert sorted((d.topic, d.setting, d.expected, d.actual) for d in report.differences) == [
        (name, "partitions", "8", "4") for name in sorted(DISTRICT_PARTITIONED)
    ]
    assert sorted(report.unchanged) == sorted(s.name for s in CATALOGUE if s.name not in DISTRICT_PARTITIONED)
    # The CLI takes the count from the option or from REGSOSEK_TOPIC_PARTITIONS, and exits 1 on a difference.
    by_option = CliRunner().invoke(
        cli_app, ["topics", "check", "--bootstrap", kafka_topics.bootstrap, "--partitions", "8"]
    )
    by_env = CliRunner().invoke(
        cli_app, ["topics", "check", "--bootstrap", kafka_topics.bootstrap], env={"REGSOSEK_TOPIC_PARTITIONS": "8"}
    )
    for result in (by_option, by_env):
        assert result.exit_code == 1, result.output
        assert result.output.count("differs") == len(DISTRICT_PARTITIONED)


def test_a_deployment_partition_count_is_created_on_every_district_topic(kafka_broker: RunningBroker) -> None:
    specs = [dataclasses.replace(s, name=f"test.scaled.{s.name}") for s in catalogue_with(8)]
    report = topics.provision(kafka_broker.bootstrap, specs)
    assert report.ok and len(report.created) == len(CATALOGUE)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        described = {t["topic"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in specs])}
    finally:
        admin.close()
    assert described == {
        f"test.scaled.{s.name}": 8 if s.name in DISTRICT_PARTITIONED else s.partitions for s in CATALOGUE
    }
    assert described[f"test.scaled.{SUBMISSIONS}"] == described[f"test.scaled.{LINK_STATE_CHANGELOG}"] == 8
