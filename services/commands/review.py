"""`regsosek serve review` (the reviewers' web app) and `regsosek review users add|list` (accounts)."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from contracts.review_decisions import ReviewerRole
from services.commands.options import bootstrap_option, settings_problems

_USERS_HELP = "Users file [env REGSOSEK_REVIEW_USERS_FILE, default .run/review/users.json]."


def _users_file(given: Path | None) -> Path:
    return given or Path(os.environ.get("REGSOSEK_REVIEW_USERS_FILE", ".run/review/users.json"))


def users_add(
    user: str = typer.Argument(..., help="Reviewer id (lower-case letters, digits, '.', '_', '-')."),
    role: ReviewerRole = typer.Option(ReviewerRole.REVIEWER, "--role", help="reviewer or supervisor."),
    users_file: Path | None = typer.Option(None, "--users-file", help=_USERS_HELP),
    password_env: str | None = typer.Option(
        None, "--password-env", help="Read the password from this environment variable (else prompt)."
    ),
) -> None:
    """Add (or replace) a reviewer account; the file keeps only a salted scrypt hash."""
    from services.review.users import UserFileError, UserStore

    path = _users_file(users_file)
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise typer.BadParameter(f"environment variable {password_env} is not set or empty")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise typer.BadParameter("the passwords differ")
    try:
        store = UserStore.load(path)
        store.add(user, password, role)
    except UserFileError as exc:
        raise typer.BadParameter(str(exc)) from None
    store.save(path)
    typer.echo(f"{user} ({role.value}) saved in {path}; {len(store)} accounts")


def serve_review(
    host: str | None = typer.Option(None, "--host", help="Listen address [env REGSOSEK_REVIEW_HOST]."),
    port: int | None = typer.Option(None, "--port", help="Listen port [env REGSOSEK_REVIEW_PORT]."),
    bootstrap: str = bootstrap_option("REGSOSEK_REVIEW_BOOTSTRAP"),
    state_path: Path | None = typer.Option(None, "--state", help="SQLite state [env REGSOSEK_REVIEW_STATE_PATH]."),
    users_file: Path | None = typer.Option(None, "--users-file", help=_USERS_HELP),
    master_path: Path | None = typer.Option(None, "--master", help="population.parquet for candidate details."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the clerical review app (queue from linkage.review.v1, decisions to linkage.review.decisions.v1)."""
    import uvicorn

    from services.review.app import build_app
    from services.review.settings import ReviewSettings
    from services.review.users import UserFileError, UserStore

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "bootstrap": bootstrap,
        "state_path": state_path,
        "users_file": users_file,
        "master_path": master_path,
    }
    try:
        settings = ReviewSettings(**{k: v for k, v in given.items() if v is not None})
        users = UserStore.load(settings.users_file)
    except ValidationError as exc:
        raise typer.BadParameter(settings_problems(exc)) from None
    except UserFileError as exc:
        raise typer.BadParameter(str(exc)) from None
    if len(users) == 0:
        raise typer.BadParameter(
            f"no reviewer accounts in {settings.users_file}: add one with `regsosek review users add <id>`"
        )
    if settings.master_path is not None and not settings.master_path.is_file():
        raise typer.BadParameter(f"master file {settings.master_path} does not exist")
    typer.echo(
        f"review app on http://{settings.host}:{settings.port} <- {settings.review_topic} "
        f"-> {settings.decisions_topic} ({len(users)} accounts)"
    )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(build_app(settings, users=users), host=settings.host, port=settings.port, log_level=log_level)


def labels(
    out: Path = typer.Option(..., "--out", help="Labels file to write (Parquet, or CSV when it ends in .csv)."),
    bootstrap: str = bootstrap_option("REGSOSEK_REVIEW_BOOTSTRAP"),
    topic: str | None = typer.Option(
        None, "--topic", help="Decisions topic [env REGSOSEK_REVIEW_DECISIONS_TOPIC, default the catalogue's]."
    ),
    timeout_s: float = typer.Option(60.0, "--timeout", help="Seconds to read the topic to its end."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out when it exists."),
) -> None:
    """Write the labelled pairs of every review decision on the decisions topic (docs/review.md, "Labels")."""
    import pyarrow as pa

    from contracts.review_decisions import REVIEW_DECISION_ADAPTER
    from services.commands.link import fail, refuse_existing, write_table
    from services.kafka.errors import KafkaError
    from services.kafka.io import read_topic
    from services.review.labels import LABEL_COLUMNS, derive_labels
    from services.review.settings import ReviewSettings

    refuse_existing(out, force)
    given: dict[str, Any] = {"bootstrap": bootstrap, "decisions_topic": topic}
    try:
        settings = ReviewSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(settings_problems(exc)) from None
    try:
        records = read_topic(
            settings.bootstrap, settings.decisions_topic, timeout_s=timeout_s, security=settings.kafka_python_security()
        )
    except (KafkaError, KeyError, TimeoutError, OSError) as exc:
        raise fail(f"cannot read {settings.decisions_topic} on {settings.bootstrap}: {exc}") from None
    decisions, unreadable = [], 0
    for record in records:
        try:
            decisions.append(REVIEW_DECISION_ADAPTER.validate_json(record.value or b""))
        except ValidationError:
            unreadable += 1
    pairs, stats = derive_labels(decisions)
    table = pa.table(
        {c: pa.array([getattr(p, c) for p in pairs], pa.int8() if c == "label" else pa.string()) for c in LABEL_COLUMNS}
    )
    write_table(table, out)
    typer.echo(
        f"{len(pairs)} labelled pairs ({stats.positives} matches, {stats.negatives} non-matches) of "
        f"{stats.members} members from {stats.decisions} decisions -> {out}"
    )
    typer.echo(
        f"not labels: {stats.skips} skips, {stats.undos} undos, {stats.duplicates} repeated decisions, "
        f"{stats.disagreed} tasks where two reviewers disagree, {stats.orphaned} second reviews of an undone "
        f"decision, {unreadable} records that are not a review decision",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add the `review` group (accounts, labels)."""
    review_app = typer.Typer(help="Clerical review: reviewer accounts, labels.", no_args_is_help=True)
    users_app = typer.Typer(help="Reviewer accounts (hashed passwords, roles).", no_args_is_help=True)
    review_app.command("labels")(labels)
    users_app.command("add")(users_add)
    review_app.add_typer(users_app, name="users")
    app.add_typer(review_app, name="review")


def register_serve(serve_app: typer.Typer) -> None:
    """Add `review` to the `serve` group."""
    serve_app.command("review")(serve_review)
