"""Broker metrics on the REAL broker: the JMX exporter agent, scraped by a real Prometheus.

A broker of its own (the session broker runs without the agent) starts with `metrics_port`, so the
JVM carries `-javaagent:jmx_prometheus_javaagent.jar=127.0.0.1:PORT:infra/kafka/jmx-exporter.yaml`.
Records are produced, and Prometheus must report the bytes the broker took in, no under-replicated or
offline partitions, one active controller, and every broker metric the rules and dashboards name.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contracts.topics import LINKED_FAMILIES, topic_spec
from monitoring.expressions import named_metrics
from services.kafka.topics import provision
from tests.support.processes import ServiceProcess, Watched, until
from tools import broker as broker_service
from tools.observability.prom_api import PrometheusApi

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RECORDS = 50
VALUE = b"x" * 1000


@pytest.fixture()
def metrics_broker(tmp_path: Path) -> Iterator[broker_service.BrokerConfig]:
    port, controller_port, metrics_port = broker_service.free_ports(3)
    config = broker_service.BrokerConfig(
        run_dir=tmp_path / "broker", port=port, controller_port=controller_port, metrics_port=metrics_port
    )
    broker_service.start(config)
    try:
        yield config
    finally:
        broker_service.stop(config)


def test_prometheus_scrapes_broker_metrics_through_the_jmx_exporter(
    metrics_broker: broker_service.BrokerConfig,
    prometheus_binary: Path,
    processes: list[Watched],
    tmp_path: Path,
) -> None:
    config = metrics_broker
    spec = dataclasses.replace(topic_spec(LINKED_FAMILIES), name="metrics.probe.v1", cleanup_policy="delete")
    assert not provision(config.bootstrap, [spec]).differences
    (prometheus_port,) = broker_service.free_ports(1)
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "kafka", "static_configs": [{"targets": [f"{config.host}:{config.metrics_port}"]}]}
                ],
            }
        )
    )
    processes.append(
        ServiceProcess(
            "prometheus",
            [
                str(prometheus_binary),
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            tmp_path,
        )
    )
    prom = PrometheusApi(f"http://127.0.0.1:{prometheus_port}")
    until("prometheus ready", prom.ready, processes)
    until("broker target up", lambda: prom.value('up{job="kafka"}') == 1, processes)
    before = prom.value("kafka_server_bytes_in_total") or 0.0

    producer = KafkaProducer(bootstrap_servers=config.bootstrap, acks="all")
    try:
        for future in [producer.send(spec.name, key=b"k%d" % i, value=VALUE) for i in range(RECORDS)]:
            future.get(timeout=30)
    finally:
        producer.close()

    # The broker counts record batches as written (headers, compression off): at least the values.
    until(
        "bytes in counted",
        lambda: (prom.value("kafka_server_bytes_in_total") or 0.0) - before >= RECORDS * len(VALUE),
        processes,
    )
    assert (prom.value("kafka_server_messages_in_total") or 0.0) >= RECORDS
    assert prom.value("kafka_server_under_replicated_partitions") == 0
    assert prom.value("kafka_controller_offline_partitions") == 0
    assert prom.value("kafka_controller_active_controllers") == 1
    assert (prom.value("kafka_server_partitions") or 0.0) >= spec.partitions
    # Every broker metric a dashboard or alert rule names is really exported.
    named = {m for m in named_metrics() if m.startswith("kafka_")}
    assert named, "the rules and dashboards name no broker metric"
    missing = sorted(m for m in named if prom.value(f"count({m})") is None)
    assert missing == []
