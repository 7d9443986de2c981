"""The simulator's pacing and counting with a fake sender, and the CLI's argument checks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.support.gateway import sample_body
from tools.commands.simulate import parse_duration
from tools.simulator import (
    ACCEPTED,
    SimulationReport,
    family_key_of,
    planned_count,
    read_submissions,
    simulate,
)


class ScriptedSender:
    """Accepts every submission except those whose family serial is in `reject` (answered with 422)."""

    def __init__(self, reject: frozenset[str] = frozenset(), delay_s: float = 0.0) -> None:
        self.reject = reject
        self.delay_s = delay_s
        self.sent: list[tuple[bytes, bytes]] = []
        self.closed = False
        self.in_flight = 0
        self.max_in_flight = 0

    async def send(self, key: bytes, value: bytes) -> str:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.delay_s)
        self.in_flight -= 1
        self.sent.append((key, value))
        return "422" if key.decode()[-3:] in self.reject else ACCEPTED

    async def close(self) -> None:
        self.closed = True


def _lines(n: int) -> list[bytes]:
    return [sample_body(i) for i in range(1, n + 1)]


def test_counts_by_outcome_and_keys_are_family_keys() -> None:
    sender = ScriptedSender(reject=frozenset({"002", "004"}))
    report = asyncio.run(simulate(_lines(10), sender, rate=1000, duration_s=1))
    assert report.sent == 10 and report.accepted == 8
    assert report.rejected == {"422": 2}
    assert sorted(k for k, _ in sender.sent) == [f"3603010001000100001{i:03d}".encode() for i in range(1, 11)]
    assert {v for _, v in sender.sent} == set(_lines(10))
    assert len(report.latencies_s) == 10


def test_rate_times_duration_bounds_the_count_and_the_pace() -> None:
    sender = ScriptedSender()
    t0 = time.monotonic()
    report = asyncio.run(simulate(_lines(100), sender, rate=50, duration_s=0.4))
    elapsed = time.monotonic() - t0
    assert planned_count(50, 0.4) == 20
    assert report.sent == 20
    # 20 sends at 50/s are scheduled over 0.38 s: pacing must have waited, not burst.
    assert elapsed >= 0.35


def test_stops_when_the_world_is_exhausted() -> None:
    report = asyncio.run(simulate(_lines(3), ScriptedSender(), rate=1000, duration_s=10))
    assert report.sent == 3


def test_concurrency_is_bounded() -> None:
    sender = ScriptedSender(delay_s=0.01)
    asyncio.run(simulate(_lines(40), sender, rate=10_000, duration_s=1, concurrency=4))
    assert sender.max_in_flight == 4


def test_unreadable_lines_are_counted_not_sent() -> None:
    no_key = json.dumps({"family_key": {"province": "x"}}).encode()
    lines = [sample_body(1), b"{not json", no_key, sample_body(2)]
    sender = ScriptedSender()
    report = asyncio.run(simulate(lines, sender, rate=1000, duration_s=1))
    assert report.sent == 2 and report.unreadable == 2
    assert family_key_of(b"{not json") is None


def test_read_submissions_skips_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "submissions.jsonl").write_bytes(sample_body(1) + b"\n\n" + sample_body(2) + b"\n")
    assert list(read_submissions(tmp_path)) == [sample_body(1), sample_body(2)]


def test_latency_percentiles_nearest_rank() -> None:
    report = SimulationReport(latencies_s=[0.001 * i for i in range(1, 101)])
    assert report.latency_percentile(0.5) == pytest.approx(0.050)
    assert report.latency_percentile(0.99) == pytest.approx(0.099)
    assert SimulationReport().latency_percentile(0.5) is None


@pytest.mark.parametrize(("text", "seconds"), [("30", 30), ("30s", 30), ("2m", 120), ("500ms", 0.5), ("1.5h", 5400)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "0", "-3s", "5d"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


def test_cli_refuses_missing_world_and_missing_token(dev_cli_app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(dev_cli_app, ["simulate", "--rate", "5", "--duration", "1", "--world", str(tmp_path)])
    assert missing.exit_code == 2
    assert "regsosek generate" in missing.output
    (tmp_path / "submissions.jsonl").write_bytes(sample_body(1) + b"\n")
    no_token = runner.invoke(
        dev_cli_app,
        ["simulate", "--rate", "5", "--duration", "1", "--world", str(tmp_path), "--via", "gateway"],
        env={"REGSOSEK_SIMULATE_TOKEN": ""},
    )
    assert no_token.exit_code == 2
    assert "needs a team token" in no_token.output
