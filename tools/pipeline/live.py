"""The demo's linking run: a trained (or cached) model, a linker process, a live stream and a summary.

`ensure_model` trains a members model on the world once and caches it under a folder of its own;
`run_live` starts the linker, streams the valid submissions at an offered rate with a live progress
display, waits until every member of the stream is linked and gathers the figures `LiveSummary`
holds (decisions, precision and recall against the truth file, throughput, latency, dead letters).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tools.pipeline.linker_process import LinkerProcess, PipelineTopics
from tools.pipeline.outcome import MemberOutcome, Submissions, stream_scores
from tools.pipeline.streaming import OutputWatcher, SubmissionStreamer, percentile


class LiveRunError(RuntimeError):
    """The linker could not start, died, or did not finish in time (the message says which)."""


def ensure_model(world: Path, cache: Path, console: Console) -> tuple[Path, bool]:
    """The members model of `world`: the cached artefact under `cache`, else trained now (and cached)."""
    existing = sorted(cache.glob("members-*/model.json"))
    if existing:
        return existing[-1].parent, True
    from linkage.batch import train_artefact
    from linkage.model.artefact import save_artefact
    from linkage.normalise.prepare import prepare_table
    from services.world import load_world_source

    with console.status("training the members model (Splink: u by sampling, m by EM)"):
        master, records = load_world_source(str(world), "members", notes=console.print)
        artefact = train_artefact(prepare_table(master), prepare_table(records), "members", max_pairs=1e6)
        return save_artefact(artefact, cache, charts=False), False


@dataclass
class LiveSummary:
    """What the demo prints after the run."""

    submissions: int = 0
    members: int = 0
    linked_members: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    precision: float = 0.0
    recall: float = 0.0
    throughput: float = 0.0
    offered: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    dead_letters: Counter[str] = field(default_factory=Counter)
    linker_ready_s: float = 0.0


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _dead_letters_since(bootstrap: str, topic: str, start: dict[int, int], keys: set[bytes | None]) -> Counter[str]:
    """Reasons of the dead letters the linker wrote after `start` for records with our keys."""
    from services.kafka.io import read_topic

    reasons: Counter[str] = Counter()
    for r in read_topic(bootstrap, topic):
        if r.offset >= start.get(r.partition, 0) and r.key in keys and r.value:
            reasons[json.loads(r.value)["reason"]] += 1
    return reasons


def run_live(
    *,
    bootstrap: str,
    topics: PipelineTopics,
    world: Path,
    model: Path,
    submissions: Submissions,
    state_dir: Path,
    rate: float | None,
    console: Console,
    group: str = "regsosek-demo-linker",
    timeout_s: float = 600.0,
    stream: list[tuple[bytes | None, bytes]] | None = None,
    stream_members: list[int] | None = None,
    expected_dead_letters: int = 0,
) -> LiveSummary:
    """Start the linker, stream `submissions`, show progress, wait for every member, stop the linker.

    `stream` / `stream_members`: what to produce instead of `submissions.records` (e.g. the valid
    submissions interleaved with bad lines, `expected_dead_letters` of them, for the linker to
    dead-letter); `submissions` still names the members that must be linked.
    """
    summary = LiveSummary(submissions=len(submissions.records))
    expected = submissions.expected_member_keys()
    summary.members = len(expected)
    dlq_start = _end_offsets(bootstrap, topics.dlq)
    started = time.monotonic()
    linker = LinkerProcess(
        bootstrap=bootstrap, group=group, state_dir=state_dir, topics=topics, world_dir=world, model_path=model
    )
    try:
        with console.status("starting the linker (loading the master and the model)"):
            if not linker.wait_for_log("Ready", 300):
                raise LiveRunError(f"the linker did not start:\n{linker.log_tail(2000)}")
        summary.linker_ready_s = time.monotonic() - started
        console.print(f"linker ready in {summary.linker_ready_s:.1f} s (pid {linker.pid}, log {linker.log_path})")
        records: list[tuple[bytes | None, bytes]] = list(submissions.records) if stream is None else stream
        counts = submissions.members if stream_members is None else stream_members
        streamer = SubmissionStreamer(bootstrap, topics.submissions, records, counts, rate=rate)
        watcher = OutputWatcher(bootstrap, topics.members, streamer, from_end=True)
        watcher.start()
        watcher.ready.wait(60)
        streamer.start()
        columns = (
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        )
        deadline = time.monotonic() + timeout_s
        with Progress(*columns, console=console) as progress:
            sent = progress.add_task("submissions produced", total=len(records), rate="")
            linked = progress.add_task("members linked", total=len(expected), rate="")
            while True:
                fig = watcher.figures()
                elapsed = max(time.time() - streamer.started_at, 1e-9) if streamer.started_at else 1e-9
                progress.update(
                    sent, completed=streamer.sent_records, rate=f"{streamer.sent_members / elapsed:,.0f} members/s"
                )
                progress.update(
                    linked, completed=min(fig.distinct, len(expected)), rate=f"{fig.distinct / elapsed:,.0f}/s"
                )
                if fig.distinct >= len(expected) and not streamer.is_alive():
                    break
                if not linker.alive():
                    raise LiveRunError(f"the linker exited ({linker.returncode()}):\n{linker.log_tail(2000)}")
                if streamer.error is not None:
                    raise LiveRunError(f"producing failed: {streamer.error}")
                if time.monotonic() > deadline:
                    raise LiveRunError(f"not every member was linked after {timeout_s:.0f} s")
                time.sleep(0.2)
        watcher.stop()
        watcher.join(10)
        fig = watcher.figures()
        summary.linked_members = fig.distinct
        summary.throughput = fig.distinct / max(fig.last_at - streamer.started_at, 1e-9)
        summary.offered = streamer.sent_members / max(streamer.finished_at - streamer.started_at, 1e-9)
        summary.latency_ms = {
            q: percentile(fig.latencies_ms, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
    finally:
        code = linker.stop()
        console.print(f"linker stopped (exit code {code})")
    latest = {k: v for k, v in MemberOutcome.read(bootstrap, topics.members).latest().items() if k in expected}
    summary.decisions = Counter(json.loads(v)["decision"] for v in latest.values())
    scores = stream_scores(latest, submissions, world).auto
    summary.precision, summary.recall = scores.precision, scores.recall
    keys = {k for k, _ in records}
    deadline = time.monotonic() + 15.0  # bad lines after the last good one may still be in flight
    while True:
        summary.dead_letters = _dead_letters_since(bootstrap, topics.dlq, dlq_start, keys)
        if sum(summary.dead_letters.values()) >= expected_dead_letters or time.monotonic() > deadline:
            return summary
        time.sleep(0.5)
