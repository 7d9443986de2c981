"""Privacy scan of the pipeline pieces that exist, at DEBUG, on the REAL broker, with a generated world.

gateway (in-process, DEBUG) -> private submissions topic -> linker (`regsosek serve linker --log-level
debug`, subprocess, fake engine over the world's master, Prometheus metrics on) -> private linkage
topics -> publisher (in-process, DEBUG) -> subscriber topics. Then every log line (ours and the Kafka
clients'), the linker's console output, both services' /metrics output and the disclosure log file are
scanned for the world's NIKs, KK numbers and names: none may appear. The notification topics of
subscribers without the raw-NIK permission are scanned too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.request
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from contracts.subscriptions import SubscriptionRegistry
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, REVIEW, SUBMISSIONS, SUBMISSIONS_DLQ, UPDATES, topic_spec
from integration.pseudonyms import KeyRing
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.privacy.disclosure import DisclosureLog
from services.privacy.log_redaction import install_log_redaction, uninstall_log_redaction
from services.publisher.core import Publisher, SourceTopics
from services.publisher.loop import LoopConfig, PublisherLoop
from services.publisher.metrics import PublisherMetrics
from services.publisher.topics import ensure_subscriber_topics
from synthetic.world import generate_world
from tests.support.broker import RunningBroker
from tests.support.polling import records_until
from tests.support.publisher import EXAMPLE_SECRETS, example_subscriptions
from tools.broker import free_port
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TOKEN = "privacy-scan-token-0123456789"
FAMILIES = 25  # enough families for every kind of record; keeps the test around half a minute


def _secrets_of_world(world_dir: Path, submissions: list[dict[str, object]]) -> set[str]:
    """Every NIK, KK number and name (master and as enumerated) the world holds."""
    pop = pq.read_table(world_dir / "population.parquet").to_pydict()
    found = {*pop["nik"], *pop["kk_number"], *pop["full_name"]}
    for doc in submissions:
        found.add(str(doc["head_name"]))
        if doc.get("kk_number"):
            found.add(str(doc["kk_number"]))
        for m in doc["members"]:  # type: ignore[attr-defined]
            found.add(str(m["name"]))
            if m.get("nik"):
                found.add(str(m["nik"]))
    # Single short tokens (e.g. a one-word name) would match unrelated text; scan what identifies a person.
    return {s for s in found if s and (len(s) >= 8 or " " in s)}


def _fake_master(world_dir: Path, path: Path) -> None:
    pop = pq.read_table(world_dir / "population.parquet").to_pylist()
    dtks = {r["nik"]: r["id_dtks"] for r in pq.read_table(world_dir / "dtks.parquet").to_pylist() if r["nik"]}
    bpjs = {r["nik"]: r["noka"] for r in pq.read_table(world_dir / "bpjs.parquet").to_pylist() if r["nik"]}
    rows = [
        {
            "nik": p["nik"],
            "full_name": p["full_name"],
            "kk_number": p["kk_number"],
            "deceased": p["status"] == "dead",
            "dtks_id": dtks.get(p["nik"]),
            "bpjs_id": bpjs.get(p["nik"]),
        }
        for p in pop
    ]
    path.write_text(json.dumps(rows))


def _private_catalogue(bootstrap: str, tag: str) -> dict[str, str]:
    names = {t: f"p{tag}.{t}" for t in (SUBMISSIONS, SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW, UPDATES)}
    report = provision(bootstrap, [dataclasses.replace(topic_spec(src), name=dst) for src, dst in names.items()])
    assert not report.differences
    return names


def test_no_nik_kk_or_name_in_logs_metrics_or_disclosure_log(
    kafka_broker: RunningBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What every `regsosek` entry point does first (services/cli.py); the linker subprocess does it itself.
    install_log_redaction()
    try:
        _pipeline_scan(kafka_broker.bootstrap, tmp_path, caplog)
    finally:
        uninstall_log_redaction()


def _pipeline_scan(bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, including kafka-python's and uvicorn/fastapi's
    tag = uuid.uuid4().hex[:8]
    world = generate_world(tmp_path / "world", persons=120, seed=11)
    submissions = [json.loads(line) for line in world.submissions.read_text().splitlines()][:FAMILIES]
    secrets_ = _secrets_of_world(tmp_path / "world", submissions)
    assert len(secrets_) > 100
    topics = _private_catalogue(bootstrap, tag)

    # 1. gateway (in-process): every submission accepted and produced.
    settings = GatewaySettings(bootstrap=bootstrap, topic=topics[SUBMISSIONS], tokens={TOKEN: "team-scan"})
    with TestClient(build_app(settings)) as gateway:
        for doc in submissions:
            answer = gateway.post(
                "/v1/submissions",
                content=json.dumps(doc).encode(),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            assert answer.status_code == 202, answer.text
        gateway_metrics = gateway.get("/metrics").text
    assert "gateway" in gateway_metrics

    # 2. linker (subprocess, DEBUG, metrics on) until every family is linked.
    master = tmp_path / "master.json"
    _fake_master(tmp_path / "world", master)
    metrics_port = free_port()
    env = {
        "REGSOSEK_LINKER_FEEDBACK_TOPIC": "",  # field feedback off: its topic is not provisioned here
        "REGSOSEK_LINKER_METRICS_PORT": str(metrics_port),
    }
    names = {t: topics[t] for t in (SUBMISSIONS, SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW)}
    linker = LinkerProcess(
        bootstrap=bootstrap,
        group=f"linker-{tag}",
        state_dir=tmp_path / "linker",
        topics=names,
        fake_master=master,
        extra_env=env,
        args=["--log-level", "debug"],
        log_path=tmp_path / "linker.log",
    )
    try:
        records_until(bootstrap, topics[LINKED_FAMILIES], lambda rs: len(rs) >= len(submissions), linker, 120)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
            linker_metrics = resp.read().decode()
    finally:
        linker.stop()
    assert "regsosek_build_info" in linker_metrics and "regsosek_region_members" in linker_metrics

    # 3. publisher (in-process, DEBUG) for the three example subscriptions.
    subs = tuple(s.model_copy(update={"subscriber_id": f"{s.subscriber_id}-{tag}"}) for s in example_subscriptions())
    registry = SubscriptionRegistry(subscriptions=subs)
    keys = KeyRing({f"{sid}-{tag}": secret for sid, secret in EXAMPLE_SECRETS.items()})
    ensure_subscriber_topics(bootstrap, registry)
    log = DisclosureLog(tmp_path / "disclosures.sqlite")
    source = SourceTopics(topics[LINKED_MEMBERS], topics[LINKED_FAMILIES], topics[UPDATES])
    publisher = Publisher(registry, keys, log, topics=source)
    metrics = PublisherMetrics(CollectorRegistry(), registry)
    loop = PublisherLoop(publisher, LoopConfig(bootstrap, group_id=f"pub-{tag}", poll_timeout_ms=200), metrics=metrics)
    try:
        loop.run_until_idle(idle_s=2.0, max_s=60.0)
    finally:
        loop.close()
    log.close()
    assert publisher.stats.sent > len(submissions)
    publisher_metrics = generate_latest(metrics.registry).decode()
    sent_metric = metrics.registry.get_sample_value(
        "regsosek_publisher_notifications_total", {"subscriber": subs[0].subscriber_id, "event_type": "family_new"}
    )
    assert sent_metric == len(submissions)  # kemensos: every family is new to it

    # 4. the scan.
    haystacks = {
        "captured DEBUG logs": caplog.text,
        "linker console (DEBUG)": linker.log_text(),
        "gateway /metrics": gateway_metrics,
        "linker /metrics": linker_metrics,
        "publisher /metrics": publisher_metrics,
        "disclosure log file": (tmp_path / "disclosures.sqlite").read_bytes().decode("latin-1"),
    }
    for sub in subs[1:]:  # kemenkes and kemendikbud may not receive raw identifiers or names
        haystacks[sub.topic] = "\n".join(
            (r.value or b"").decode() + (r.key or b"").decode() for r in read_topic(bootstrap, sub.topic)
        )
    assert caplog.records and any(r.levelno == logging.DEBUG for r in caplog.records)
    # The clients did log every record sent at DEBUG; the redaction left only the payload sizes.
    assert " bytes>" in haystacks["captured DEBUG logs"] and " bytes>" in haystacks["linker console (DEBUG)"]
    leaks = {where: sorted(s for s in secrets_ if s in text)[:3] for where, text in haystacks.items()}
    assert {where: found for where, found in leaks.items() if found} == {}
    # The kemensos feed is the control: it may carry NIKs, and does, so the scan can find them.
    kemensos = "\n".join((r.value or b"").decode() for r in read_topic(bootstrap, subs[0].topic))
    assert any(s in kemensos for s in secrets_)
