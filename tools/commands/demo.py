"""`python -m tools demo`: the whole pipeline on a generated world with a real Kafka broker.

Steps: start (or reuse) the broker, provision the topics, generate a world, train the members model
(cached next to the world), start the linker service as a process, stream the submissions at an offered
rate with a live progress display, then print a summary (decisions, precision and recall against the
truth file, throughput, latency percentiles, dead letters by reason) and stop what it started.

Each line of submissions.jsonl is validated with the FamilySubmission contract first: valid lines are
produced to `regsosek.submissions.v1` keyed by family key (the original bytes, unchanged); invalid lines
become DeadLetters on `regsosek.submissions.dlq.v1`. A dead letter from a file names its source as
`file:<name>` with partition 0 and the 0-based line number as offset. With `--submissions FILE` (no world,
so no master to link to) or `--no-link` the demo only streams.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.decode import ContractViolation, decode
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from contracts.topics import SUBMISSIONS, SUBMISSIONS_DLQ
from linkage.records import family_key_string
from services.commands.topics import print_report
from services.kafka import topics as topic_admin
from services.kafka.io import JsonProducer, ProduceError, Value
from services.kafka.record import KafkaRecord
from services.linker.deadletter import bounded_dead_letter
from tools import broker as kafka_broker
from tools.pipeline.linker_process import PipelineTopics
from tools.pipeline.live import LiveRunError, LiveSummary, ensure_model, run_live
from tools.pipeline.outcome import Submissions

DEFAULT_OUT = kafka_broker.DEFAULT_RUN_DIR.parent / "demo"
BATCH = 500


@dataclass
class StreamCounts:
    """What streaming a submissions file did."""

    lines: int = 0
    families: int = 0
    members: int = 0
    produced: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def stream_submissions(path: Path, bootstrap: str, *, advance: Callable[[int], None] | None = None) -> StreamCounts:
    """Validate each line of `path` and produce it (or its DeadLetter); returns after all are acked."""
    counts = StreamCounts()
    families: set[bytes] = set()
    good: list[tuple[bytes, bytes]] = []
    bad: list[tuple[bytes | None, Value]] = []
    source = f"file:{path.name}"

    def flush(producer: JsonProducer) -> None:
        counts.produced += len(producer.send_many(SUBMISSIONS, good))
        counts.dead_lettered += len(producer.send_many(SUBMISSIONS_DLQ, bad))
        if advance is not None:
            advance(len(good) + len(bad))
        good.clear()
        bad.clear()

    with JsonProducer(bootstrap, client_id="regsosek-demo") as producer, open(path, "rb") as lines:
        for offset, line in enumerate(lines):
            payload = line.rstrip(b"\r\n")
            counts.lines += 1
            try:
                submission = decode(FAMILY_SUBMISSION_ADAPTER, payload)
            except ContractViolation as violation:
                position = KafkaRecord(source, 0, offset, None, payload, round(time.time() * 1000))
                letter = bounded_dead_letter(violation, payload, None, position)  # fits in one record
                bad.append((None, letter))
                counts.reasons[letter.reason.value] = counts.reasons.get(letter.reason.value, 0) + 1
            else:
                families.add(submission.kafka_key)
                counts.members += len(submission.members)
                good.append((submission.kafka_key, payload))
            if len(good) + len(bad) >= BATCH:
                flush(producer)
        flush(producer)
    counts.families = len(families)
    return counts


def _generate(
    out: Path, regency: str, persons: int, seed: int, console: Console, invalid_nik_share: float = 0.0
) -> Path:
    from synthetic import UnknownRegencyError, generate_world
    from synthetic.profile import NoiseProfile

    with Progress(
        TextColumn("generating: {task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("world", total=1)

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=max(total, 1))

        try:
            profile = NoiseProfile(nik_invalid_share=invalid_nik_share)
            world = generate_world(out, regency=regency, persons=persons, seed=seed, profile=profile, progress=report)
        except UnknownRegencyError as exc:
            raise typer.BadParameter(str(exc), param_hint="--regency") from None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--persons") from None
    console.print(
        f"world of {world.persons:,} persons in {world.families:,} families written to {out} "
        f"({world.submission_count:,} submissions)"
    )
    return Path(world.submissions)


def _print_counts(counts: StreamCounts, console: Console) -> None:
    table = Table(title="submissions streamed into Kafka")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("families", counts.families),
        ("members", counts.members),
        (f"produced to {SUBMISSIONS}", counts.produced),
        (f"dead-lettered to {SUBMISSIONS_DLQ}", counts.dead_lettered),
    ):
        table.add_row(label, f"{value:,}")
    for reason, n in sorted(counts.reasons.items()):
        table.add_row(f"  reason {reason}", f"{n:,}")
    console.print(table)


def _model_cache(world: Path) -> Path:
    """Where the world's trained model is cached: keyed by the population file's content."""
    digest = hashlib.sha256((world / "population.parquet").read_bytes()).hexdigest()[:12]
    return kafka_broker.DEFAULT_RUN_DIR.parent / "demo-models" / digest


def _print_summary(summary: LiveSummary, console: Console) -> None:
    table = Table(title="linkage summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    total = max(summary.linked_members, 1)
    rows = [
        ("members linked (auto)", "linked"),
        ("members for review", "pending_review"),
        ("members without a match", "not_linked"),
    ]
    for label, decision in rows:
        n = summary.decisions.get(decision, 0)
        table.add_row(label, f"{n:,} ({n / total:.1%})")
    table.add_row("precision (auto links vs truth)", f"{summary.precision:.4f}")
    table.add_row("recall (auto links vs truth)", f"{summary.recall:.4f}")
    table.add_row("offered load", f"{summary.offered:,.0f} members/s")
    table.add_row("end-to-end throughput", f"{summary.throughput:,.0f} members/s")
    for q in ("p50", "p95", "p99"):
        table.add_row(f"latency {q} (produced -> linked record consumed)", f"{summary.latency_ms.get(q, 0.0):,.0f} ms")
    table.add_row("dead letters written by the linker", f"{sum(summary.dead_letters.values()):,}")
    for reason, n in sorted(summary.dead_letters.items()):
        table.add_row(f"  reason {reason}", f"{n:,}")
    console.print(table)


def _stream_only(path: Path, bootstrap: str, console: Console) -> StreamCounts:
    with open(path, "rb") as lines:
        total = sum(1 for _ in lines)
    columns = (TextColumn("streaming submissions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("stream", total=total)
        return stream_submissions(path, bootstrap, advance=lambda n: progress.advance(task, n))


def _best_effort_key(payload: bytes) -> bytes | None:
    """The family key of a bad line when it still has one (the gateway keys what it can parse)."""
    try:
        return family_key_string(json.loads(payload)["family_key"]).encode()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _stream_and_link(
    path: Path, world: Path, bootstrap: str, rate: float, state_dir: Path, console: Console
) -> tuple[StreamCounts, LiveSummary]:
    """Every line goes through Kafka, bad ones too: the linker links the valid ones and dead-letters the rest."""
    model, cached = ensure_model(world, _model_cache(world), console)
    console.print(f"members model {'loaded from the cache' if cached else 'trained'}: {model}")
    counts = StreamCounts()
    valid: list[bytes] = []
    stream: list[tuple[bytes | None, bytes]] = []
    members: list[int] = []
    families: set[bytes] = set()
    with open(path, "rb") as lines:
        for line in lines:
            payload = line.rstrip(b"\r\n")
            counts.lines += 1
            try:
                submission = decode(FAMILY_SUBMISSION_ADAPTER, payload)
            except ContractViolation:
                stream.append((_best_effort_key(payload), payload))
                members.append(0)
                continue
            valid.append(payload)
            families.add(submission.kafka_key)
            counts.members += len(submission.members)
            stream.append((submission.kafka_key, payload))
            members.append(len(submission.members))
    counts.families = len(families)
    bad = len(stream) - len(valid)
    summary = run_live(
        bootstrap=bootstrap,
        topics=PipelineTopics(),
        world=world,
        model=model,
        submissions=Submissions.of(valid),
        state_dir=state_dir,
        rate=rate or None,
        console=console,
        stream=stream,
        stream_members=members,
        expected_dead_letters=bad,
    )
    counts.produced = len(stream)
    counts.dead_lettered = sum(summary.dead_letters.values())
    counts.reasons = dict(summary.dead_letters)
    return counts, summary


def demo(
    persons: int = typer.Option(5000, min=10, help="Persons in the generated population."),
    seed: int = typer.Option(2022, help="Seed of the synthetic world (same seed, same world)."),
    regency: str = typer.Option("3603", help="Kemendagri regency code (4 digits)."),
    out: Path = typer.Option(DEFAULT_OUT, help="Folder for the generated world."),
    submissions: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Stream this submissions.jsonl instead of generating a world."
    ),
    link: bool = typer.Option(True, "--link/--no-link", help="Start the linker and link what is streamed."),
    rate: float = typer.Option(1000.0, min=0, help="Offered load in members/s (0: as fast as possible)."),
    invalid_nik_share: float = typer.Option(
        0.3,
        min=0.0,
        max=1.0,
        help="Share of the generated world's mistyped NIKs that are invalid (their submissions are dead-lettered).",
    ),
    state_dir: Path = typer.Option(
        kafka_broker.DEFAULT_RUN_DIR.parent / "demo-linker", help="The demo linker's state folder."
    ),
    keep_broker: bool = typer.Option(False, "--keep-broker", help="Leave a broker this command started running."),
    run_dir: Path = typer.Option(kafka_broker.DEFAULT_RUN_DIR, help="Broker run folder."),
    port: int = typer.Option(kafka_broker.DEFAULT_PORT, help="Broker client port."),
    controller_port: int = typer.Option(kafka_broker.DEFAULT_CONTROLLER_PORT, help="Broker controller port."),
) -> None:
    """Broker, topics, a generated world, the members model, the linker; stream, link and summarise."""
    if not (len(regency) == 4 and regency.isdigit()):
        raise typer.BadParameter("regency must be a 4-digit Kemendagri code, e.g. 3603")
    console = Console()
    config = kafka_broker.BrokerConfig(run_dir=run_dir, port=port, controller_port=controller_port)
    try:
        with console.status("starting the Kafka broker"):
            st = kafka_broker.start(config)
    except kafka_broker.BrokerError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    started_here = not st.already_running
    if started_here:
        console.print(f"broker started at {st.bootstrap} (pid {st.pid}) in {st.start_seconds or 0:.1f} s")
    else:
        console.print(f"reusing the running broker at {st.bootstrap} (pid {st.pid})")
    try:
        report = topic_admin.provision(st.bootstrap)
        print_report(report, console)
        share = invalid_nik_share if link else 0.0  # stream-only: the demo itself dead-letters bad lines
        path = submissions or _generate(out, regency, persons, seed, console, share)
        if link and submissions is None:
            counts, summary = _stream_and_link(path, out, st.bootstrap, rate, state_dir, console)
            _print_counts(counts, console)
            _print_summary(summary, console)
        else:
            if link:
                console.print("no world to link against (--submissions): streaming only")
            _print_counts(_stream_only(path, st.bootstrap, console), console)
    except (topic_admin.TopicsError, ProduceError, LiveRunError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    finally:
        if started_here and not keep_broker:
            kafka_broker.stop(config)
            console.print("broker stopped (use --keep-broker to leave it running)")


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root CLI."""
    app.command("demo")(demo)
