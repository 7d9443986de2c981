"""`regsosek subscriptions add|list|remove`: edit the versioned subscription registry file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from contracts.subscriptions import EventType, Subscription, SubscriptionRegistry, reserved_subscriber_id
from services.publisher.registry_file import RegistryFileError, load_registry, save_registry

subscriptions_app = typer.Typer(help="Manage ministry subscriptions (the registry file).", no_args_is_help=True)

RegistryOption = typer.Option(
    Path("subscriptions.json"),
    "--registry",
    envvar="REGSOSEK_PUBLISHER_REGISTRY_PATH",
    help="The registry JSON file (created on the first add).",
)


def _load(path: Path) -> SubscriptionRegistry:
    try:
        return load_registry(path)
    except RegistryFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--registry") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'subscription'}: {e['msg']}" for e in exc.errors())


def _refuse_reserved(kind: str, principal: str, super_users: str) -> None:
    """Exit 2 with one line (registry untouched) when `principal` is a reserved Kafka login."""
    supers = frozenset(p.strip().removeprefix("User:") for p in super_users.split(";") if p.strip())
    reason = reserved_subscriber_id(principal, supers)
    if reason is not None:
        typer.echo(f"Error: {kind} id {principal!r} is reserved: {reason}", err=True)
        raise typer.Exit(2)


def _remove(
    registry_path: Path, without: Callable[[SubscriptionRegistry], SubscriptionRegistry], missing: str
) -> SubscriptionRegistry:
    """Save the registry `without(...)` returns; a KeyError from it is `missing` (a bad parameter)."""
    registry = _load(registry_path)
    try:
        updated = without(registry)
    except KeyError:
        raise typer.BadParameter(f"{missing} in {registry_path}") from None
    save_registry(registry_path, updated)
    return updated


@subscriptions_app.command("add")
def add_cmd(
    subscriber_id: str = typer.Argument(..., help="Subscriber id, e.g. kemensos (lower case, digits, '-')."),
    purpose_code: str | None = typer.Option(None, "--purpose-code", help="Purpose code, e.g. BANSOS-TARGETING."),
    purpose_text: str | None = typer.Option(None, "--purpose", help="What the data is used for (10-500 chars)."),
    events: list[EventType] = typer.Option([], "--event", help="An event type to receive (repeat)."),
    person_fields: list[str] = typer.Option([], "--person-field", help="A person field it may receive."),
    family_fields: list[str] = typer.Option([], "--family-field", help="A family field it may receive."),
    regions: list[str] = typer.Option([], "--region", help="Province (2) or regency (4 digits) filter."),
    programmes: list[str] = typer.Option([], "--programme", help="Only persons in dtks / bpjs (repeat)."),
    deciles: list[int] = typer.Option([], "--decile", help="Only persons in this DTKS decile 1-10 (repeat)."),
    raw_nik: bool = typer.Option(False, "--raw-nik", help="May receive the raw NIK and KK number."),
    valid_from: datetime | None = typer.Option(None, "--valid-from", help="Start (UTC); default now."),
    valid_until: datetime | None = typer.Option(None, "--valid-until", help="End (UTC); default open."),
    from_json: Path | None = typer.Option(None, "--from-json", help="Read the subscription from a JSON file."),
    backfill: bool = typer.Option(
        True,
        "--backfill/--no-backfill",
        help="First deliver the current state of every matching record (marked snapshot), then the live feed.",
    ),
    super_users: str = typer.Option(
        "",
        "--super-users",
        envvar="REGSOSEK_KAFKA_SUPER_USERS",
        help="The broker's super.users when it has more than User:admin;User:ANONYMOUS (e.g. 'User:ops').",
    ),
    registry_path: Path = RegistryOption,
) -> None:
    """Add a subscription; the registry version goes up by one.

    With `--backfill` (the default) the publisher, when it next starts, first sends the current state
    of every matching person/family from the compacted linkage topics (`snapshot: true`), then the live
    feed. Reserved principals are refused (exit 2, registry unchanged): the broker's super users and the
    `regsosek-` service principals. A subscriber id is its Kafka login, so taking one of these names
    would let `acl sync` set that principal's password.
    """
    _refuse_reserved("subscriber", subscriber_id, super_users)
    registry = _load(registry_path)
    try:
        if from_json is not None:
            data = json.loads(from_json.read_text())
            data["subscriber_id"] = subscriber_id
            data.setdefault("backfill", backfill)
            subscription = Subscription.model_validate(data)
        else:
            subscription = Subscription.model_validate(
                {
                    "subscriber_id": subscriber_id,
                    "purpose_code": purpose_code,
                    "purpose_text": purpose_text,
                    "event_types": events,
                    "person_fields": person_fields,
                    "family_fields": family_fields,
                    "filters": {"region_codes": regions, "programmes": programmes, "deciles": deciles},
                    "may_receive_nik": raw_nik,
                    "valid_from": (valid_from or datetime.now(UTC)).replace(tzinfo=UTC),
                    "valid_until": valid_until.replace(tzinfo=UTC) if valid_until else None,
                    "backfill": backfill,
                }
            )
        updated = registry.with_added(subscription)
    except ValidationError as exc:
        raise typer.BadParameter(_problems(exc)) from None
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from None
    save_registry(registry_path, updated)
    then = "; backfill when the publisher next starts" if subscription.backfill else ""
    typer.echo(f"added {subscriber_id} -> {subscription.topic} (registry version {updated.registry_version}){then}")


@subscriptions_app.command("remove")
def remove_cmd(subscriber_id: str = typer.Argument(...), registry_path: Path = RegistryOption) -> None:
    """Remove a subscription (its topic and disclosure log entries stay); the version goes up by one."""
    updated = _remove(registry_path, lambda r: r.without(subscriber_id), f"no subscription {subscriber_id!r}")
    typer.echo(f"removed {subscriber_id} (registry version {updated.registry_version})")


@subscriptions_app.command("list")
def list_cmd(
    registry_path: Path = RegistryOption,
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """Show every subscription: purpose, events, fields, filters, raw-NIK permission and validity."""
    registry = _load(registry_path)
    if as_json:
        typer.echo(registry.model_dump_json(indent=2))
        return
    table = Table(title=f"subscriptions (registry version {registry.registry_version})")
    for col in ("subscriber", "purpose", "events", "fields", "filters", "raw NIK", "valid"):
        table.add_column(col)
    for s in registry.subscriptions:
        fields = ", ".join([f"person.{f}" for f in s.person_fields] + [f"family.{f}" for f in s.family_fields])
        filters = (
            ", ".join(
                [f"region {r}" for r in s.filters.region_codes]
                + list(s.filters.programmes)
                + [f"decile {d}" for d in s.filters.deciles]
            )
            or "-"
        )
        until = s.valid_until.date().isoformat() if s.valid_until else "open"
        table.add_row(
            s.subscriber_id,
            s.purpose_code,
            ", ".join(s.event_types),
            fields,
            filters,
            "yes" if s.may_receive_nik else "no",
            f"{s.valid_from.date()} - {until}",
        )
    Console(width=200).print(table)


def register(app: typer.Typer) -> None:
    """Add the `subscriptions` group."""
    app.add_typer(subscriptions_app, name="subscriptions")
