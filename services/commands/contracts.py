"""`regsosek contracts export|validate`: JSON Schema export; checking JSON Lines files against a contract."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from contracts.dead_letter import DEAD_LETTER_ADAPTER, classify, field_errors
from contracts.linkage_outputs import INTEGRATED_FAMILY_ADAPTER, LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.population import POPULATION_CHANGE_ADAPTER, POPULATION_RECORD_ADAPTER
from contracts.schema_export import NOTIFICATION_ADAPTER, SCHEMA_DIR, export_schemas
from contracts.sectoral import SECTORAL_RECORD_ADAPTER
from contracts.submission import FAMILY_SUBMISSION_ADAPTER

contracts_app = typer.Typer(help="Contract schemas and validation of message files.", no_args_is_help=True)


class MessageKind(StrEnum):
    """Which contract the lines of a file follow (inputs, outputs, dead letters, notifications)."""

    SUBMISSION = "submission"
    POPULATION_RECORD = "population-record"
    POPULATION_CHANGE = "population-change"
    SECTORAL = "sectoral"
    DEAD_LETTER = "dead-letter"
    MEMBER = "member"
    FAMILY = "family"
    REVIEW = "review"
    UPDATE = "update"
    NOTIFICATION = "notification"


_ADAPTERS: dict[MessageKind, TypeAdapter[Any]] = {
    MessageKind.SUBMISSION: FAMILY_SUBMISSION_ADAPTER,
    MessageKind.POPULATION_RECORD: POPULATION_RECORD_ADAPTER,
    MessageKind.POPULATION_CHANGE: POPULATION_CHANGE_ADAPTER,
    MessageKind.SECTORAL: SECTORAL_RECORD_ADAPTER,
    MessageKind.DEAD_LETTER: DEAD_LETTER_ADAPTER,
    MessageKind.MEMBER: LINKED_MEMBER_ADAPTER,
    MessageKind.FAMILY: INTEGRATED_FAMILY_ADAPTER,
    MessageKind.REVIEW: REVIEW_TASK_ADAPTER,
    MessageKind.UPDATE: LINKAGE_UPDATE_ADAPTER,
    MessageKind.NOTIFICATION: NOTIFICATION_ADAPTER,
}

#: Longest line `contracts validate` reads (bytes). Far above any contract's bound (a family of 99
#: members is a few tens of KiB); a longer line is reported, not loaded, so memory stays bounded.
MAX_LINE_BYTES = 4 * 1024 * 1024


class LineTooLong(Exception):
    """A line longer than MAX_LINE_BYTES (its number and the bound are in the message)."""


def read_lines(fh: IO[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of `fh`, each read with at most `max_bytes + 1` bytes in memory; LineTooLong beyond that."""
    line_no = 0
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        line_no += 1
        if len(line) > max_bytes and not (len(line) == max_bytes + 1 and line.endswith(b"\n")):
            raise LineTooLong(f"line {line_no} is longer than {max_bytes} bytes; not a JSON Lines file?")
        yield line


def _fail(message: str) -> typer.Exit:
    # One line on stderr and exit 2 (a usage problem), never a traceback.
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@contracts_app.command("export")
def export_cmd(
    out: Path = typer.Option(SCHEMA_DIR, "--out", help="Folder for the *.json schema files."),
) -> None:
    """Write the JSON Schema of every contract (commit the result; a test checks it is up to date)."""
    console = Console(soft_wrap=True)

    def report(path: Path, changed: bool) -> None:
        console.print(f"{'[yellow]updated[/]' if changed else 'ok     '}  {path}")

    export_schemas(out, on_written=report)


@contracts_app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., help="JSON Lines file, one message per line."),
    kind: MessageKind = typer.Option(
        MessageKind.SUBMISSION, "--contract", "--kind", help="Contract of the lines (--kind: older name)."
    ),
    max_errors: int = typer.Option(50, "--max-errors", min=0, help="Print at most this many invalid lines."),
) -> None:
    """Validate every line of FILE; print each invalid line's field errors (no values). Exit 1 if any.

    The file is streamed line by line; a line over 4 MiB stops the run with one line and exit 2.
    """
    if not file.is_file():
        raise _fail(f"{file} is not a readable file")
    adapter = _ADAPTERS[kind]
    console = Console(soft_wrap=True)
    valid = invalid = blank = 0
    reasons: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    total_bytes = file.stat().st_size
    columns = (TextColumn("validating"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    try:
        fh = file.open("rb")
    except OSError as e:
        raise _fail(f"cannot read {file}: {e.strerror}") from None
    try:
        with fh, Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("validate", total=total_bytes)
            for line_no, raw in enumerate(read_lines(fh), start=1):
                progress.advance(task, len(raw))
                line = raw.strip()
                if not line:
                    blank += 1
                    continue
                try:
                    message = adapter.validate_json(line)
                except ValidationError as e:
                    invalid += 1
                    reasons[classify(e).value] += 1
                    if invalid <= max_errors:
                        for err in field_errors(e):
                            text = f"line {line_no}: {err.location}: {err.message} [{err.error_type}]"
                            progress.console.print(text, markup=False, highlight=False)
                    continue
                valid += 1
                for flag in _quality_flags(message):
                    flags[flag] += 1
    except LineTooLong as e:
        raise _fail(f"{file}: {e}") from None
    console.print(f"{file}: {valid} valid, {invalid} invalid, {blank} blank lines", markup=False)
    for reason, count in sorted(reasons.items()):
        console.print(f"  invalid ({reason}): {count}")
    for flag, count in sorted(flags.items()):
        console.print(f"  warning ({flag}): {count}")
    if invalid:
        raise typer.Exit(code=1)


def _quality_flags(message: Any) -> list[str]:
    # Submissions carry flags per member; master and sectoral records carry their own; outputs none.
    members = getattr(message, "members", None)
    if members is not None:
        return [flag.value for member in members for flag in getattr(member, "quality_flags", ())]
    return [flag.value for flag in getattr(message, "quality_flags", ())]


def register(app: typer.Typer) -> None:
    """Add the `contracts` command group to the CLI."""
    app.add_typer(contracts_app, name="contracts")
