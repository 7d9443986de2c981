"""A real Prometheus scrapes a running gateway, linker and review app during an end-to-end run on the real broker.

Debian's `prometheus` binary runs on a free loopback port with a 1 s scrape interval and the project's
alert rules; the gateway (`regsosek serve gateway`) and the linker (`python -m services.linker`, fake
engine, a two-district world for region progress) run as subprocesses on their own copies of the
catalogue topics. The counters read back through Prometheus's HTTP API must equal what was processed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer

from contracts.topics import (
    FIELD_FEEDBACK,
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    REVIEW,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    topic_spec,
)
from monitoring.expressions import named_metrics
from services.kafka.topics import provision
from tests.support.broker import RunningBroker
from tests.support.linker import FakeMasterPerson, member_payload, nik_for, submission_payload
from tests.support.processes import ServiceProcess, Watched, until
from tests.support.review import PASSWORD
from tools.broker import free_ports
from tools.observability.picture import render_run_picture
from tools.observability.prom_api import PrometheusApi
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "metrics-test-token-0123456789"
KK = "3603121705150003"
MASTER = [
    FakeMasterPerson(nik_for(11), "Ahmad Fauzi", KK, dtks_id="DTKS-11"),
    FakeMasterPerson(nik_for(12, female=True), "Siti Aminah", KK),
    FakeMasterPerson(nik_for(21), "Joko Susilo", "3603121705150021"),
    FakeMasterPerson(nik_for(31, female=True), "Dewi Lestari", "3603121705150031", bpjs_id="0000000000031"),
]
# BPS districts 3603010 and 3603020 are Kemendagri 360312 and 360313 in the world's crosswalk.
FAMILIES = [
    submission_payload(
        [
            member_payload(1, "Ahmad Fauzi", nik_for(11)),  # auto_link (+ DTKS)
            member_payload(2, "Sity Aminah", nik_for(12, female=True), sex=2, relationship=2),  # review
            member_payload(3, "Rizky", None, relationship=3, birth=(None, None, 2015)),  # no_match, no NIK
        ],
        family_key="3603010001000100001001",
        kk_number=KK,
    ),
    submission_payload([member_payload(1, "Joko Susilo", nik_for(21))], family_key="3603010001000100002001"),
    submission_payload(
        [member_payload(1, "Dewi Lestari", nik_for(31, female=True), sex=2)],  # auto (+ BPJS)
        family_key="3603020003000200001001",
    ),
    submission_payload([member_payload(1, "Budi Santoso", nik_for(41))], family_key="3603020003000200002001"),
]
MEMBERS = 6
BANDS = {"auto_link": 3, "review": 1, "no_match": 2}


def two_more_scrapes(prom: PrometheusApi, processes: list[Watched]) -> None:
    """Wait until Prometheus has scraped every target at least twice more (its sample count of `up`)."""
    scrapes = 'min(count_over_time(up{job=~"gateway|linker|review"}[1h]))'
    now = prom.value(scrapes) or 0.0
    until("two more scrapes of every target", lambda: (prom.value(scrapes) or 0.0) >= now + 2, processes, 30)


def make_world(folder: Path) -> None:
    """A two-district world: targets for region progress and the BPS -> Kemendagri crosswalk."""
    folder.mkdir()
    pq.write_table(
        pa.table(
            {
                "kk_number": ["K1", "K1", "K1", "K2", "K3", "K4", "K4", "K5"],
                "district_code": ["360312"] * 4 + ["360313"] * 4,
                "status": ["alive"] * 8,
                "moved_out": [False] * 8,
            }
        ),
        folder / "population.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "level": ["district", "district"],
                "bps_code": ["3603010", "3603020"],
                "kemendagri_code": ["360312", "360313"],
                "name": ["Cisoka", "Solear"],
            }
        ),
        folder / "crosswalk.parquet",
    )


def test_prometheus_sees_what_the_pipeline_processed(
    kafka_broker: RunningBroker, prometheus_binary: Path, processes: list[Watched], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    names = {
        src: f"p{tag}.{src.split('.')[-2]}"
        for src in (SUBMISSIONS, SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW, FIELD_FEEDBACK)
    }
    report = provision(bootstrap, [dataclasses.replace(topic_spec(src), name=dst) for src, dst in names.items()])
    assert not report.differences
    gateway_port, linker_port, prometheus_port, review_port = free_ports(4)
    world = tmp_path / "world"
    make_world(world)
    master = tmp_path / "master.json"
    master.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))

    gateway = ServiceProcess(
        "gateway",
        [
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(gateway_port),
            "--topic",
            names[SUBMISSIONS],
        ],
        tmp_path,
        {
            "REGSOSEK_GATEWAY_BOOTSTRAP": bootstrap,
            "REGSOSEK_GATEWAY_TOKENS": json.dumps({TOKEN: "team-1"}),
            "REGSOSEK_GATEWAY_FEEDBACK_TOPIC": names[FIELD_FEEDBACK],
        },
    )
    processes.append(gateway)
    linker = LinkerProcess(
        bootstrap=bootstrap,
        group=f"linker-{tag}",
        state_dir=tmp_path / "state",
        topics=names,
        fake_master=master,
        world_dir=world,
        log_path=tmp_path / "linker.log",
        extra_env={"REGSOSEK_LINKER_METRICS_PORT": str(linker_port)},
    )
    processes.append(linker)
    # The review app on the linker's review topic (its backlog gauges are read from its state at each scrape).
    users = tmp_path / "review-users.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "review",
            "users",
            "add",
            "rina",
            "--users-file",
            str(users),
            "--password-env",
            "REVIEW_PW",
        ],
        cwd=REPO,
        env={**os.environ, "REVIEW_PW": PASSWORD},
        check=True,
        capture_output=True,
    )
    processes.append(
        ServiceProcess(
            "review",
            [
                sys.executable,
                "-m",
                "services.cli",
                "serve",
                "review",
                "--host",
                "127.0.0.1",
                "--port",
                str(review_port),
                "--users-file",
                str(users),
                "--state",
                str(tmp_path / "review.sqlite"),
                "--log-level",
                "warning",
            ],
            tmp_path,
            {
                "REGSOSEK_REVIEW_BOOTSTRAP": bootstrap,
                "REGSOSEK_REVIEW_REVIEW_TOPIC": names[REVIEW],
                "REGSOSEK_REVIEW_MEMBERS_TOPIC": names[LINKED_MEMBERS],
                "REGSOSEK_REVIEW_SUBMISSIONS_TOPIC": names[SUBMISSIONS],
            },
        )
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "monitoring/prometheus/rules/*.yml")],
                "scrape_configs": [
                    {"job_name": "gateway", "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}]},
                    {"job_name": "linker", "static_configs": [{"targets": [f"127.0.0.1:{linker_port}"]}]},
                    {"job_name": "review", "static_configs": [{"targets": [f"127.0.0.1:{review_port}"]}]},
                ],
            }
        )
    )
    processes.append(
        ServiceProcess(
            "prometheus",
            [
                str(prometheus_binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            tmp_path,
        )
    )
    prom = PrometheusApi(f"http://127.0.0.1:{prometheus_port}")
    base = f"http://127.0.0.1:{gateway_port}"
    until("prometheus ready", prom.ready, processes)
    until("gateway ready", lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, processes)
    until("all targets up", lambda: prom.value('sum(up{job=~"gateway|linker|review"})') == 3, processes)
    started = time.time()

    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=15) as client:
        # Two waves, so the scraped series show progress (and the linker's counters move in between).
        codes = [client.post("/v1/submissions", json=doc, headers=auth).status_code for doc in FAMILIES[:2]]
        until("first wave linked", lambda: prom.value("sum(regsosek_messages_consumed_total)") == 2, processes)
        two_more_scrapes(prom, processes)  # the first wave's values stay on the picture for a while
        codes += [client.post("/v1/submissions", json=doc, headers=auth).status_code for doc in FAMILIES[2:]]
        codes.append(client.post("/v1/submissions", content=b'{"schema_version": "1"}', headers=auth).status_code)
        codes.append(client.post("/v1/submissions", json=FAMILIES[0]).status_code)  # no token
    assert codes == [202] * len(FAMILIES) + [422, 401]
    # Two bad records straight to the topic (the gateway would refuse them): the linker dead-letters them.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        bad_nik = json.loads(json.dumps(FAMILIES[1]))
        bad_nik["members"][0]["nik"] = "99"
        producer.send(names[SUBMISSIONS], key=b"3603010001000100002001", value=b"not json").get(timeout=30)
        producer.send(names[SUBMISSIONS], key=b"3603010001000100002001", value=json.dumps(bad_nik).encode()).get(30)
    finally:
        producer.close()
    consumed = len(FAMILIES) + 2
    assert sum(len(doc["members"]) for doc in FAMILIES) == MEMBERS  # type: ignore[arg-type,misc]

    def linker_scraped_everything() -> bool:
        return prom.value("sum(regsosek_messages_consumed_total)") == consumed

    until("linker processed everything", linker_scraped_everything, processes)
    until("review app holds the task", lambda: prom.value("regsosek_review_open_tasks") == 1, processes)
    two_more_scrapes(prom, processes)  # so the range of the picture ends flat

    def value(expr: str) -> float | None:
        return prom.value(expr)

    assert value('regsosek_gateway_requests_total{route="/v1/submissions",code="202"}') == len(FAMILIES)
    assert value('regsosek_gateway_requests_total{route="/v1/submissions",code="422"}') == 1
    assert value('regsosek_gateway_requests_total{route="/v1/submissions",code="401"}') == 1
    assert value('sum(linkage_decisions_total{source="dukcapil"})') == MEMBERS
    bands = {s.labels["band"]: s.value for s in prom.query('linkage_decisions_total{source="dukcapil"}')}
    assert bands == BANDS
    assert value('linkage_decisions_total{source="dtks",band="auto_link"}') == 1
    assert value('linkage_decisions_total{source="bpjs",band="auto_link"}') == 1
    assert value("linkage_members_without_nik_total") == 1
    dead = {s.labels["reason"]: s.value for s in prom.query("regsosek_dead_letters_total > 0")}
    assert dead == {"not_json": 1, "invalid_nik": 1}
    produced = {s.labels["topic"]: s.value for s in prom.query("regsosek_messages_produced_total")}
    assert produced == {
        names[LINKED_MEMBERS]: MEMBERS,
        names[LINKED_FAMILIES]: len(FAMILIES),
        names[REVIEW]: 1,
        names[SUBMISSIONS_DLQ]: 2,
        names[FIELD_FEEDBACK]: 5,
    }
    until("gateway serves the feedback", lambda: value("sum(regsosek_gateway_feedback_open_items)") == 5, processes)
    feedback = {s.labels["kind"]: s.value for s in prom.query("regsosek_gateway_feedback_open_items > 0")}
    assert feedback == {"kk_mismatch": 2, "member_not_found": 1, "nik_not_in_master": 1, "nik_of_another_person": 1}
    assert value("regsosek_event_age_seconds_count") == consumed
    assert value("linkage_match_probability_count") == 4  # members with a candidate
    assert value("linkage_review_backlog_members") == 1
    assert value("linkage_master_records") == len(MASTER)
    assert value('linkage_model_info{model_version="fake-1"}') == 1
    assert value(f'sum(regsosek_consumer_lag_messages{{topic="{names[SUBMISSIONS]}"}})') == 0
    assert (value("time() - regsosek_last_processed_timestamp_seconds") or 1e9) < 120
    # The Kafka client's side, from faust's sensor hooks: the one instance owns every partition.
    assert value("regsosek_linker_assigned_partitions") == topic_spec(SUBMISSIONS).partitions
    assert (value("regsosek_linker_rebalances_total") or 0) >= 1
    assert (value("regsosek_linker_offset_commits_total") or 0) >= 1
    # One query, so both come from the same scrape: every counted commit has its duration.
    assert value("regsosek_linker_offset_commit_seconds_count - regsosek_linker_offset_commits_total") == 0
    region = {s.labels["district"]: s.value for s in prom.query("regsosek_region_members_linked")}
    assert region == {"360312": 2, "360313": 1, "unknown": 0}
    assert value('regsosek_region_families_submitted{district="360313"}') == 2
    assert value('regsosek_region_families_expected{district="360312"}') == 2
    coverage = value("sum(regsosek_region_members_submitted) / sum(regsosek_region_members_expected)")
    assert coverage == pytest.approx(MEMBERS / 8)

    # Every metric a dashboard or an alert rule names is really exported by the running services.
    assert value('regsosek_review_open_tasks_by_age{age="0-1d"}') == 1  # the linker's one review task
    assert value('regsosek_review_ingested_records_total{kind="review"}') == 1
    assert value("regsosek_review_open_second_reviews") == 0
    scraped = {s.labels["__name__"] for s in prom.query('count by (__name__) ({job=~"gateway|linker|review"})')}
    # Broker series are checked against a broker with the JMX exporter (test_broker_metrics.py); the
    # publisher does not run here (its names are checked against its registry in the unit tests).
    elsewhere = ("kafka_", "regsosek_publisher_")
    # The review decisions counter has a regency label: its series appear with the first decision (none here).
    not_yet = {"regsosek_review_decisions_total"}
    missing = {
        name: where
        for name, where in named_metrics().items()
        if name not in scraped and not name.startswith(elsewhere) and name not in not_yet
    }
    assert not missing, f"named by dashboards/rules but not scraped: {missing}"

    rules = {rule["name"]: rule for rule in prom.rules()}
    assert {"LinkerDown", "GatewayErrors", "MatchRateCollapsed"} <= set(rules)
    assert all(rule["health"] == "ok" for rule in rules.values())
    assert rules["LinkerDown"]["state"] == "inactive" and rules["GatewayErrors"]["state"] == "inactive"

    picture = tmp_path / "run.png"
    points = render_run_picture(prom, started - 5, time.time(), picture)
    assert points > 20
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("REGSOSEK_RUN_PICTURE"):  # to refresh the picture in docs/
        shutil.copy(picture, os.environ["REGSOSEK_RUN_PICTURE"])
