"""`regsosek serve review` as an operator runs it: accounts from the CLI, env settings, a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.review_broker import publish_world, ready, review_settings, wait_for
from tests.support.review import PASSWORD
from tools.broker import free_port

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker


@pytest.mark.broker
def test_serve_review_process_reads_the_queue_and_stops_cleanly(kafka_broker: RunningBroker, tmp_path: Path) -> None:
    settings = review_settings(kafka_broker.bootstrap, tmp_path)
    a, b, _ = publish_world(settings)
    users = tmp_path / "users.json"
    cli = [sys.executable, "-m", "services.cli"]
    env = {
        **os.environ,
        "PW": PASSWORD,
        "REGSOSEK_REVIEW_BOOTSTRAP": settings.bootstrap,
        "REGSOSEK_REVIEW_REVIEW_TOPIC": settings.review_topic,
        "REGSOSEK_REVIEW_MEMBERS_TOPIC": settings.members_topic,
        "REGSOSEK_REVIEW_SUBMISSIONS_TOPIC": settings.submissions_topic,
        "REGSOSEK_REVIEW_DECISIONS_TOPIC": settings.decisions_topic,
    }
    subprocess.run(
        [*cli, "review", "users", "add", "rina", "--users-file", str(users), "--password-env", "PW"],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *cli,
            "serve",
            "review",
            "--port",
            str(port),
            "--users-file",
            str(users),
            "--state",
            str(tmp_path / "state.sqlite"),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or ready(base), "the review process to read its topics")
        assert proc.poll() is None, proc.communicate()[0]
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            page = client.get("/login").text
            csrf = page.split('name="csrf" value="')[1].split('"')[0]
            queue = client.post("/login", data={"csrf": csrf, "user": "rina", "password": PASSWORD})
            assert queue.status_code == 200 and a.task_id in queue.text and b.task_id in queue.text
            metrics = client.get("/metrics").text
            assert "regsosek_review_open_tasks 2.0" in metrics
            assert 'regsosek_review_ingested_records_total{kind="review"} 3.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so supervisors see it.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output and PASSWORD not in output
