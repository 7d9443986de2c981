"""Dashboards and alert rules as code: no drift, every PromQL parses, every metric exists, rules tested."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from monitoring.dashboards.generate import OUTPUT_DIR, render_all
from monitoring.dashboards.panels import DATASOURCE_UID
from monitoring.expressions import dashboard_expressions, load_yaml, metric_names, named_metrics, rule_expressions
from tools.observability.catalogue import broker_series_names, exported_series_names
from tools.observability.promtool import check_expressions, find_binary, run_promtool

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "prometheus" / "tests").glob("*.yml"))
#: Series Prometheus itself makes (scrape health); everything else must come from our services.
PROMETHEUS_SERIES = {"up"}
#: The gateway's field-feedback series (issue 13, section 4), named by the review board with these agreed
#: names; registered by the gateway's feedback feature.
GATEWAY_FEEDBACK_SERIES = {"regsosek_gateway_feedback_open_items", "regsosek_gateway_feedback_items_total"}


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = find_binary("promtool")
    if path is None:
        message = "promtool missing: install Debian's prometheus package (make install does)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def test_committed_dashboards_match_the_code() -> None:
    rendered = render_all()
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUTPUT_DIR.glob("*.json")}
    assert sorted(committed) == sorted(rendered), "run: python -m monitoring.dashboards.generate"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} drifted: run `python -m monitoring.dashboards.generate`"


def test_the_five_boards_have_their_panels() -> None:
    titles = {uid.split("/")[0] for uid, _ in dashboard_expressions()}
    assert titles == {
        "regsosek-pipeline",
        "regsosek-linkage-quality",
        "regsosek-region-progress",
        "regsosek-publisher",
        "regsosek-review",
    }
    exprs = " ".join(expr for _, expr in dashboard_expressions())
    for needle in (
        "regsosek_event_age_seconds_bucket",
        "regsosek_consumer_lag_messages",
        "regsosek_dead_letters_total",
        "linkage_match_probability_bucket",
        "linkage_review_backlog_members",
        "linkage_members_without_nik_total",
        'source=~"dtks|bpjs"',
        "regsosek_region_families_expected",
        "regsosek_publisher_consumer_lag_messages",
        "regsosek_publisher_notifications_total",
        "kafka_server_bytes_in_total",
        "kafka_server_under_replicated_partitions",
        "sum by (age) (regsosek_review_open_tasks_by_age)",
        "regsosek_review_oldest_open_task_age_seconds",
        "sum by (role, outcome) (increase(regsosek_review_decisions_total",
        "sum by (regency) (increase(regsosek_review_decisions_total",
        'regsosek_review_second_decisions_total{result="agree"}',
        "regsosek_review_decisions_refused_total",
        "sum by (kind) (regsosek_gateway_feedback_open_items)",
        "sum by (transition) (increase(regsosek_gateway_feedback_items_total",
        "sum by (instance) (linkage_shard_master_rows)",
        "rate(linkage_shard_rows_fetched_total[5m])",
        "rate(linkage_shard_index_lookup_seconds_total[5m])",
    ):
        assert needle in exprs


def test_every_target_uses_the_provisioned_datasource() -> None:
    provisioned = load_yaml(MONITORING / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert [d["uid"] for d in provisioned] == [DATASOURCE_UID]
    for path in OUTPUT_DIR.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == DATASOURCE_UID, (path.name, panel["title"])


def test_every_named_metric_is_exported_by_the_services() -> None:
    exported = exported_series_names() | broker_series_names() | PROMETHEUS_SERIES
    named = named_metrics()
    assert "regsosek_gateway_requests_total" in named and "linkage_decisions_total" in named
    assert "regsosek_publisher_consumer_lag_messages" in named and "kafka_server_bytes_in_total" in named
    assert set(named) >= GATEWAY_FEEDBACK_SERIES and "regsosek_review_open_tasks_by_age" in named
    assert exported >= GATEWAY_FEEDBACK_SERIES
    unknown = {name: where for name, where in named.items() if name not in exported}
    assert not unknown, f"metrics named but not registered by any service: {unknown}"


def test_metric_name_extraction_sees_through_matchers() -> None:
    expr = 'sum by (le) (rate(linkage_x_bucket{source="dukcapil",band=~"a|b"}[5m])) / ignoring (band) up'
    assert metric_names(expr) == {"linkage_x_bucket", "up"}
    assert metric_names("sum(x_total) - sum(x_total offset 6h) or vector(0)") == {"x_total"}


def test_every_expression_parses(promtool: Path) -> None:
    expressions = [expr for _, expr in dashboard_expressions() + rule_expressions()]
    assert len(expressions) > 40
    result = check_expressions(expressions)
    assert result.ok, result.output
    broken = check_expressions(["sum(rate(linkage_decisions_total[5m])"])
    assert not broken.ok  # the check really parses


def test_rules_and_config_pass_promtool(promtool: Path) -> None:
    for path in RULES:
        result = run_promtool("check", "rules", str(path))
        assert result.ok, result.output
    config = run_promtool("check", "config", str(MONITORING / "prometheus/prometheus.yml"))
    assert config.ok, config.output


def test_alert_rule_unit_tests_pass(promtool: Path) -> None:
    assert RULE_TESTS
    result = run_promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.ok, result.output
    assert "SUCCESS" in result.output


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {name for name, _ in rule_expressions()}
    assert alerts >= {
        "LinkerDown",
        "ConsumerLagGrowing",
        "LinkingStalled",
        "DeadLetterRateHigh",
        "ReviewBacklogHigh",
        "MatchRateCollapsed",
        "GatewayErrors",
        "PublisherDown",
        "PublisherLagGrowing",
        "PublisherUndecodableRecords",
        "KafkaBrokerDown",
        "KafkaUnderReplicatedPartitions",
        "KafkaOfflinePartitions",
        "ReviewBacklogGrowing",
        "ReviewTaskTooOld",
        "ReviewDecisionsStalled",
        "ReviewDecisionsRefused",
    }
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == alerts, f"alerts never shown firing: {alerts - fires}"
    assert quiet == alerts, f"alerts never shown quiet: {alerts - quiet}"


def test_every_alert_has_a_runbook_section() -> None:
    operations = (REPO / "docs" / "operations.md").read_text(encoding="utf-8").lower()
    for path in RULES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                anchor = rule["annotations"]["runbook"].split("#")[1]
                assert f"### {anchor}" in operations, f"docs/operations.md lacks a section for {rule['alert']}"
