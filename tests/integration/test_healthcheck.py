"""The compose health check of linker and publisher against the REAL broker and a real consumer group."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from services.observability.healthcheck import check
from tests.support.broker import RunningBroker

pytestmark = [pytest.mark.broker]
REPO = Path(__file__).resolve().parents[2]


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"up 1\n")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture()
def metrics_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_healthy_only_while_the_group_has_a_live_member(kafka_broker: RunningBroker, metrics_url: str) -> None:
    bootstrap: str = kafka_broker.bootstrap
    group = f"health-{uuid.uuid4().hex[:8]}"
    # Before any consumer joined: no such group (or no coordinator yet) -> unhealthy.
    problems = check(metrics_url, bootstrap, group)
    assert len(problems) == 1 and problems[0].startswith(f"consumer group {group} ")

    consumer = KafkaConsumer(
        "__consumer_offsets", bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        deadline = time.monotonic() + 60
        while check(metrics_url, bootstrap, group) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert check(metrics_url, bootstrap, group) == []
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.observability.healthcheck",
                "--metrics",
                metrics_url,
                "--bootstrap",
                bootstrap,
                "--group",
                group,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (0, f"healthy: group {group} is Stable")
        # The service's /metrics gone (process hung or dead; port 9 is closed on loopback): unhealthy
        # although the group is fine.
        assert [p.split(" (")[0] for p in check("http://127.0.0.1:9/metrics", bootstrap, group)] == [
            "metrics endpoint unreachable"
        ]
    finally:
        consumer.close()
    # After the member left: unhealthy again.
    deadline = time.monotonic() + 60
    while not check(metrics_url, bootstrap, group) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert any(f"consumer group {group} is" in p for p in check(metrics_url, bootstrap, group))


def test_an_unreachable_broker_is_unhealthy(metrics_url: str) -> None:
    problems = check(metrics_url, "127.0.0.1:9", "g", timeout_s=2.0)
    assert len(problems) == 1 and problems[0].startswith("broker 127.0.0.1:9 unreachable")
