"""`regsosek demo`: broker up, topics provisioned, a small synthetic world streamed into Kafka.

Later issues extend this command to the whole pipeline (linkage, review, updates). Each line of
submissions.jsonl is validated with the FamilySubmission contract first: valid lines are produced to
`regsosek.submissions.v1` keyed by family key (the original bytes, unchanged); invalid lines become
DeadLetters on `regsosek.submissions.dlq.v1`. A dead letter from a file names its source as
`file:<name>` with partition 0 and the 0-based line number as offset.
"""

from __future__ import annotations

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
from services import broker as kafka_broker
from services import topics as topic_admin
from services.commands.topics import print_report
from services.kafka_io import JsonProducer, ProduceError, Value

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


def stream_submissions(
    path: Path, bootstrap: str, *, advance: Callable[[int], None] | None = None
) -> StreamCounts:
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
                letter = violation.dead_letter(
                    payload=payload, source_topic=source, source_partition=0, source_offset=offset, key=None
                )
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


def _generate(out: Path, regency: str, persons: int, seed: int, console: Console) -> Path:
    from linkage.synthetic import UnknownRegencyError, generate_world

    with Progress(TextColumn("generating: {task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:  # fmt: skip
        task = progress.add_task("world", total=1)

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=max(total, 1))

        try:
            world = generate_world(out, regency=regency, persons=persons, seed=seed, progress=report)
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
    for label, value in (("families", counts.families), ("members", counts.members),
                         (f"produced to {SUBMISSIONS}", counts.produced),
                         (f"dead-lettered to {SUBMISSIONS_DLQ}", counts.dead_lettered)):  # fmt: skip
        table.add_row(label, f"{value:,}")
    for reason, n in sorted(counts.reasons.items()):
        table.add_row(f"  reason {reason}", f"{n:,}")
    console.print(table)


def demo(
    persons: int = typer.Option(5000, min=10, help="Persons in the generated population."),
    seed: int = typer.Option(2022, help="Seed of the synthetic world (same seed, same world)."),
    regency: str = typer.Option("3603", help="Kemendagri regency code (4 digits)."),
    out: Path = typer.Option(DEFAULT_OUT, help="Folder for the generated world."),
    submissions: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Stream this submissions.jsonl instead of generating a world."
    ),
    keep_broker: bool = typer.Option(
        False, "--keep-broker", help="Leave a broker this command started running."
    ),
    run_dir: Path = typer.Option(kafka_broker.DEFAULT_RUN_DIR, help="Broker run folder."),
    port: int = typer.Option(kafka_broker.DEFAULT_PORT, help="Broker client port."),
    controller_port: int = typer.Option(kafka_broker.DEFAULT_CONTROLLER_PORT, help="Broker controller port."),
) -> None:
    """Start (or reuse) the broker, provision topics, generate a world and stream its submissions."""
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
        path = submissions or _generate(out, regency, persons, seed, console)
        with open(path, "rb") as lines:
            total = sum(1 for _ in lines)
        columns = (
            TextColumn("streaming submissions"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("stream", total=total)
            counts = stream_submissions(path, st.bootstrap, advance=lambda n: progress.advance(task, n))
        _print_counts(counts, console)
    except (topic_admin.TopicsError, ProduceError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    finally:
        if started_here and not keep_broker:
            kafka_broker.stop(config)
            console.print("broker stopped (use --keep-broker to leave it running)")


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root CLI."""
    app.command("demo")(demo)
