"""Topic provisioning against the real broker: create all, idempotent re-run, differences reported."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import typer
from kafka.admin import KafkaAdminClient, NewTopic
from typer.testing import CliRunner

from contracts.topics import CATALOGUE, LINKED_MEMBERS, SUBMISSIONS, TopicSpec
from services import topics

if TYPE_CHECKING:
    from tests.conftest import ProvisionedBroker, RunningBroker

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
