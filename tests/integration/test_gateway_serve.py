"""`regsosek serve gateway` as an operator runs it: a real process, env settings, a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import typer
from typer.testing import CliRunner

from contracts.topics import TopicSpec
from services.kafka import topics
from services.kafka.io import read_topic
from tests.support.gateway import sample_body
from tools.broker import free_port

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker

TOKEN = "serve-test-token-0123456789"


def _flat(text: str) -> str:
    # rich wraps error panels; compare words, not line breaks or box characters.
    return " ".join(text.replace("│", " ").split())


def test_serve_gateway_refuses_to_start_without_usable_tokens(cli_app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    unset: dict[str, str | None] = {"REGSOSEK_GATEWAY_TOKENS": None, "REGSOSEK_GATEWAY_TOKENS_FILE": None}
    none = runner.invoke(cli_app, ["serve", "gateway"], env=unset)
    assert none.exit_code == 2
    assert "no team tokens configured" in _flat(none.output)
    bad = tmp_path / "tokens.json"
    bad.write_text('{"short": "team-a"}')
    weak = runner.invoke(cli_app, ["serve", "gateway", "--tokens-file", str(bad)], env=unset)
    assert weak.exit_code == 2
    assert "shorter than 16 characters" in _flat(weak.output)
    assert "Traceback" not in weak.output
    garbled = runner.invoke(cli_app, ["serve", "gateway"], env={**unset, "REGSOSEK_GATEWAY_TOKENS": "{bad"})
    assert garbled.exit_code == 2
    assert "REGSOSEK_GATEWAY_TOKENS must be a JSON object" in _flat(garbled.output)


@pytest.mark.broker
def test_serve_gateway_process_stores_a_submission_and_stops_cleanly(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    topic = f"test.gateway.serve.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(
        topic, 2, "delete", -1, key="family key", value_schema="FamilySubmission v1", description="serve gateway test"
    )
    topics.provision(kafka_broker.bootstrap, [spec])
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({TOKEN: "team-serve"}))
    port = free_port()
    env = {**os.environ, "REGSOSEK_GATEWAY_BOOTSTRAP": kafka_broker.bootstrap, "REGSOSEK_GATEWAY_TOPIC": topic}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            "gateway",
            "--port",
            str(port),
            "--tokens-file",
            str(tokens),
            "--log-level",
            "info",
            "--log-format",
            "json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the gateway did not become ready within 60 s"
            time.sleep(0.2)
        answer = httpx.post(
            f"{base}/v1/submissions",
            content=sample_body(77),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["topic"] == topic
        # A CR/LF and an ANSI escape in the request line and in a refused body: neither forges a log line.
        assert httpx.get(f"{base}/healthz%0D%0Aforged%1B[31m", timeout=10).status_code == 404
        hostile = sample_body(78).replace(b"S-3603-0000078-r1", b"S-1\\r\\nforged\\u001b[31m")
        refused = httpx.post(
            f"{base}/v1/submissions",
            content=hostile,
            timeout=10,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert refused.status_code == 422
        wrong_type = httpx.post(
            f"{base}/v1/submissions",
            content=sample_body(79),
            timeout=10,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
        )
        assert wrong_type.status_code == 415
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so supervisors see it.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    assert f"gateway on {base} -> {kafka_broker.bootstrap} topic {topic} (1 team tokens)" in output
    assert TOKEN not in output
    # --log-format json: after the start-up banner, every line is one JSON object (uvicorn's lines too).
    lines = [line for line in output.splitlines() if line and not line.startswith("gateway on ")]
    entries = [json.loads(line) for line in lines]
    assert not any(line.startswith("forged") or "\x1b" in line for line in lines)
    messages = [e["message"] for e in entries]
    assert "submission refused: not declared as JSON team=team-serve" in messages
    assert any(
        m.startswith("submission invalid team=team-serve errors=1 first_loc=['body', 'submission_id']")
        for m in messages
    )
    assert any("GET /healthz%0D%0Aforged%1B%5B31m HTTP/1.1" in m and m.endswith(" 404") for m in messages)
    (record,) = read_topic(kafka_broker.bootstrap, topic, timeout_s=20)
    assert record.value == sample_body(77) and record.key == b"3603010001000100001077"
