"""`regsosek audit disclosures|summary|verify`: what the disclosure log says was sent to whom, when and why,
and whether its hash chain (`services.privacy.chain`) shows rows deleted, altered or reordered.

Each entry has a status (`services.privacy.disclosure`): `pending` (logged, send not yet acknowledged),
`in_doubt` (the publisher stopped before the acknowledgement was recorded: may have been delivered) or
`sent` (acknowledged). All of them are disclosures. The log is opened read-only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from services.privacy.disclosure import STATUSES, Disclosure, DisclosureLog

audit_app = typer.Typer(help="Query the append-only disclosure log.", no_args_is_help=True)

DbOption = typer.Option(
    Path(".run/publisher/disclosures.sqlite"),
    "--db",
    envvar="REGSOSEK_PUBLISHER_DISCLOSURE_DB",
    help="The publisher's disclosure log (SQLite).",
)


def _open(db: Path) -> DisclosureLog:
    if not db.is_file():
        raise typer.BadParameter(f"no disclosure log at {db}", param_hint="--db")
    return DisclosureLog(db, read_only=True)


def _utc(moment: datetime | None) -> datetime | None:
    # typer parses naive datetimes; the log is in UTC.
    return None if moment is None else moment.replace(tzinfo=UTC)


def _as_dict(d: Disclosure, status: str, sent_at: datetime | None) -> dict[str, object]:
    return {
        "message_id": d.message_id,
        "subscriber_id": d.subscriber_id,
        "purpose_code": d.purpose_code,
        "event_type": d.event_type,
        "record_type": d.record_type,
        "subject_id": d.subject_id,
        "reference_id": d.reference_id,
        "fields": list(d.fields),
        "disclosed_at": d.disclosed_at.isoformat(),
        "source": d.source,
        "person_ids": list(d.person_ids),
        "status": status,
        "sent_at": sent_at.isoformat() if sent_at else None,
    }


@audit_app.command("disclosures")
def disclosures_cmd(
    subscriber: str | None = typer.Option(None, "--subscriber", help="Only this subscriber."),
    person: str | None = typer.Option(None, "--person", help="Only records about this internal person id."),
    since: datetime | None = typer.Option(None, "--since", help="From this time (UTC, inclusive)."),
    until: datetime | None = typer.Option(None, "--until", help="Up to this time (UTC, exclusive)."),
    limit: int | None = typer.Option(None, "--limit", min=1),
    status: str | None = typer.Option(None, "--status", help=f"Only entries in this status: {', '.join(STATUSES)}."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines instead of a table."),
    db: Path = DbOption,
) -> None:
    """List disclosures: who received which record, when, for which purpose, with which fields, and status."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"one of {', '.join(STATUSES)}", param_hint="--status")
    log = _open(db)
    try:
        rows = log.query(
            subscriber_id=subscriber, person_id=person, since=_utc(since), until=_utc(until), status=status, limit=limit
        )
        statuses = log.status(d.message_id for d in rows)
        sent_at = {d.message_id: log.sent_at(d.message_id) for d in rows}
    finally:
        log.close()
    if as_json:
        for d in rows:
            typer.echo(json.dumps(_as_dict(d, statuses[d.message_id], sent_at[d.message_id]), sort_keys=True))
        return
    table = Table(title=f"{len(rows)} disclosures")
    for col in ("time (UTC)", "subscriber", "purpose", "event", "record", "subject", "fields", "status", "message id"):
        table.add_column(col)
    for d in rows:
        table.add_row(
            d.disclosed_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.subscriber_id,
            d.purpose_code,
            d.event_type,
            d.record_type,
            d.subject_id,
            ",".join(d.fields),
            statuses[d.message_id],
            d.message_id,
        )
    Console(width=240).print(table)


@audit_app.command("summary")
def summary_cmd(db: Path = DbOption) -> None:
    """Disclosure counts per subscriber and purpose: all entries, then per status (tab-separated)."""
    log = _open(db)
    try:
        counts = log.summary()
    finally:
        log.close()
    typer.echo("\t".join(("subscriber", "purpose", "disclosures", *STATUSES)))
    for (subscriber, purpose), by_status in sorted(counts.items()):
        numbers = [str(sum(by_status.values())), *(str(by_status[s]) for s in STATUSES)]
        typer.echo("\t".join((subscriber, purpose, *numbers)))


@audit_app.command("verify")
def verify_cmd(
    head: str | None = typer.Option(
        None, "--head", help="A head hash printed by an earlier verify: it must still be in the chain."
    ),
    db: Path = DbOption,
) -> None:
    """Check the log's hash chain: exit 0 and print the head hash if intact; else one line per problem, exit 1."""
    log = _open(db)
    try:
        result = log.verify(expected_head=head)
    finally:
        log.close()
    if result.ok:
        typer.echo(f"ok: {result.rows} rows chained, head {result.head}")
        return
    for position, what in result.problems:
        where = f"position {position}" if position else "outside the chain"
        typer.echo(f"TAMPERED {where}: {what}", err=True)
    typer.echo(f"{len(result.problems)} problems in {result.rows} chained rows", err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `audit` group."""
    app.add_typer(audit_app, name="audit")
