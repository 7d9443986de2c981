"""The demo's streaming step and the `python -m tools demo` command against the session broker."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner

from contracts.dead_letter import DeadLetter
from contracts.submission import FamilySubmission
from contracts.topics import SUBMISSIONS, SUBMISSIONS_DLQ
from services.kafka.io import read_topic
from tests.integration.samples import raw, submission, submission_dict
from tools import broker
from tools.commands.demo import StreamCounts, stream_submissions

if TYPE_CHECKING:
    from tests.support.broker import ProvisionedBroker

pytestmark = pytest.mark.broker


def _write_world(path: Path, first_serial: int) -> list[bytes]:
    bad_member = {**submission_dict()["members"][0], "nik": "0000000000000000"}
    lines = [submission(family_serial=first_serial + n).model_dump_json().encode() for n in range(5)]
    lines.append(submission(family_serial=first_serial, revision=2).model_dump_json().encode())
    lines.append(raw(submission_dict(first_serial + 9, members=[bad_member])))
    lines.append(b"")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def _table_rows(output: str) -> dict[str, str]:
    """The label -> count rows of the demo's summary table."""
    cells = [line.split("│") for line in output.splitlines() if line.count("│") == 3]
    return {c[1].strip(): c[2].strip() for c in cells}


def test_stream_submissions_produces_valid_lines_and_dead_letters_the_rest(
    kafka_topics: ProvisionedBroker, tmp_path: Path
) -> None:
    path = tmp_path / "world-stream.jsonl"
    lines = _write_world(path, first_serial=401)
    advanced: list[int] = []
    counts = stream_submissions(path, kafka_topics.bootstrap, advance=advanced.append)
    assert counts == StreamCounts(
        lines=8, families=5, members=12, produced=6, dead_lettered=2, reasons={"invalid_nik": 1, "empty": 1}
    )
    assert sum(advanced) == 8

    keys = {f"3603010001000100001{n:03d}".encode() for n in range(401, 406)}
    produced = [r for r in read_topic(kafka_topics.bootstrap, SUBMISSIONS) if r.key in keys]
    assert sorted(r.value or b"" for r in produced) == sorted(lines[:6])  # the original bytes
    first_family = [json.loads(r.value or b"")["revision"] for r in produced if r.key == min(keys)]
    assert first_family == [1, 2]  # revisions of one family stay in order

    dlq = [DeadLetter.model_validate_json(r.value or b"") for r in read_topic(kafka_topics.bootstrap, SUBMISSIONS_DLQ)]
    ours = [d for d in dlq if d.source_topic == "file:world-stream.jsonl"]
    assert [(d.reason.value, d.source_partition, d.source_offset) for d in ours] == [
        ("invalid_nik", 0, 6),
        ("empty", 0, 7),
    ]
    assert ours[0].payload == lines[6] and ours[1].payload == b""


def test_demo_command_reuses_a_running_broker_and_leaves_it_running(
    kafka_topics: ProvisionedBroker,
    kafka_broker_config: broker.BrokerConfig,
    dev_cli_app: typer.Typer,
    tmp_path: Path,
) -> None:
    path = tmp_path / "world-cli.jsonl"
    _write_world(path, first_serial=501)
    config = kafka_broker_config
    args = [
        "demo",
        "--submissions",
        str(path),
        "--run-dir",
        str(config.run_dir),
        "--port",
        str(config.port),
        "--controller-port",
        str(config.controller_port),
    ]
    result = CliRunner().invoke(dev_cli_app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "reusing the running broker" in result.output
    rows = _table_rows(result.output)
    assert rows["families"] == "5" and rows["members"] == "12"
    assert rows[f"produced to {SUBMISSIONS}"] == "6" and rows[f"dead-lettered to {SUBMISSIONS_DLQ}"] == "2"
    assert broker.status(kafka_broker_config).running  # not stopped: this command did not start it


def test_demo_rejects_a_bad_regency_code(dev_cli_app: typer.Typer) -> None:
    result = CliRunner().invoke(dev_cli_app, ["demo", "--regency", "36x3"])
    assert result.exit_code == 2
    assert "regency must be a 4-digit Kemendagri code" in result.output


def test_demo_generates_a_world_and_streams_all_of_its_submissions(
    kafka_topics: ProvisionedBroker,
    kafka_broker_config: broker.BrokerConfig,
    dev_cli_app: typer.Typer,
    tmp_path: Path,
) -> None:
    config = kafka_broker_config
    out = tmp_path / "world"
    args = [
        "demo",
        "--persons",
        "1000",
        "--seed",
        "11",
        "--out",
        str(out),
        "--run-dir",
        str(config.run_dir),
        "--port",
        str(config.port),
        "--controller-port",
        str(config.controller_port),
        "--invalid-nik-share",
        "1.0",
        "--state-dir",
        str(tmp_path / "linker"),
    ]
    result = CliRunner().invoke(dev_cli_app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    lines = (out / "submissions.jsonl").read_bytes().splitlines()
    valid = []
    for line in lines:
        with contextlib.suppress(ValueError):
            valid.append(FamilySubmission.model_validate_json(line))
    rows = _table_rows(result.output)
    assert len(lines) > 200
    # Every line went through Kafka; the linker dead-lettered the invalid ones (mistyped NIKs made invalid).
    bad = len(lines) - len(valid)
    assert bad > 0
    assert rows[f"produced to {SUBMISSIONS}"] == f"{len(lines):,}"
    assert rows[f"dead-lettered to {SUBMISSIONS_DLQ}"] == f"{bad:,}"
    assert rows["dead letters written by the linker"] == f"{bad:,}"
    assert rows["reason invalid_nik"] == f"{bad:,}"
    assert rows["families"] == f"{len({s.kafka_key for s in valid}):,}"
    assert rows["members"] == f"{sum(len(s.members) for s in valid):,}"

    # Linked by the real linker process: every member of each family's latest revision got a decision.
    latest: dict[bytes, FamilySubmission] = {}
    for s in valid:
        if s.kafka_key not in latest or s.revision >= latest[s.kafka_key].revision:
            latest[s.kafka_key] = s
    decided = [
        int(rows[label].split()[0].replace(",", ""))
        for label in ("members linked (auto)", "members for review", "members without a match")
    ]
    assert sum(decided) == sum(len(s.members) for s in latest.values())
    assert decided[0] > 0.8 * sum(decided)
    assert float(rows["precision (auto links vs truth)"]) >= 0.95
    assert float(rows["recall (auto links vs truth)"]) >= 0.9
    assert "linker stopped (exit code 0)" in result.output
