"""`regsosek acl plan|sync`: least-privilege Kafka ACLs and SCRAM users from the subscription registry."""

from __future__ import annotations

from pathlib import Path

import typer

from contracts.subscriptions import SubscriptionRegistry
from services.access.acl import SERVICE_PRINCIPALS, plan, sync
from services.commands.options import DEFAULT_BOOTSTRAP, DEFAULT_SASL_BOOTSTRAP, bootstrap_option
from services.kafka.acl import AclSyncError
from services.kafka.admin import admin_client
from services.kafka.errors import KafkaError
from services.kafka.scram import ScramError
from services.kafka.security import scram_options
from services.publisher.registry_file import RegistryFileError, load_registry
from services.publisher.topics import ensure_subscriber_topics

acl_app = typer.Typer(help="Kafka access control: SCRAM users and ACLs from the registry.", no_args_is_help=True)

RegistryOption = typer.Option(
    Path("subscriptions.json"),
    "--registry",
    envvar="REGSOSEK_PUBLISHER_REGISTRY_PATH",
    help="The subscription registry file.",
)


def _registry(path: Path) -> SubscriptionRegistry:
    try:
        return load_registry(path)
    except RegistryFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--registry") from None


@acl_app.command("plan")
def plan_cmd(registry_path: Path = RegistryOption) -> None:
    """Print the grants `sync` would make (no broker needed)."""
    try:
        grants = plan(_registry(registry_path))
    except AclSyncError as exc:
        raise typer.BadParameter(str(exc)) from None
    for grant in grants:
        typer.echo(str(grant))


def _passwords(credentials_dir: Path | None, principals: list[str]) -> dict[str, str]:
    # One file per principal, `<principal>.password`; principals without a file keep their password.
    if credentials_dir is None:
        return {}
    if not credentials_dir.is_dir():
        raise typer.BadParameter(f"{credentials_dir} is not a folder", param_hint="--credentials-dir")
    found = {}
    for name in principals:
        path = credentials_dir / f"{name}.password"
        if path.is_file():
            password = path.read_text().strip()
            if len(password) < 12:
                raise typer.BadParameter(f"the password in {path} is shorter than 12 characters")
            found[name] = password
    return found


@acl_app.command("sync")
def sync_cmd(
    bootstrap: str | None = bootstrap_option(
        "REGSOSEK_ACL_BOOTSTRAP",
        default=None,
        what=f" (default {DEFAULT_SASL_BOOTSTRAP}, the SASL listener; with --plaintext {DEFAULT_BOOTSTRAP})",
    ),
    admin_user: str = typer.Option("admin", "--admin-user", envvar="REGSOSEK_ACL_ADMIN_USER"),
    admin_password_file: Path | None = typer.Option(
        None, "--admin-password-file", help="File with the admin password [or env REGSOSEK_ACL_ADMIN_PASSWORD]."
    ),
    admin_password: str | None = typer.Option(None, envvar="REGSOSEK_ACL_ADMIN_PASSWORD", hidden=True),
    credentials_dir: Path | None = typer.Option(
        None, "--credentials-dir", help="Folder of <principal>.password files: SCRAM users to create/update."
    ),
    plaintext: bool = typer.Option(
        False,
        "--plaintext",
        help="Connect to the broker's internal PLAINTEXT (operator) listener instead of SASL; used to "
        "bootstrap the first users, including admin, on a fresh broker.",
    ),
    registry_path: Path = RegistryOption,
) -> None:
    """Create subscriber topics, SCRAM users and exactly the planned ACLs (removing stale grants).

    Only the grants of managed principals (services, subscribers and teams, and principals holding
    grants on `subscriber.*` / `integration.*` resources) are changed; hand-made grants of any other
    principal are left as they are.
    """
    registry = _registry(registry_path)
    bootstrap = bootstrap or (DEFAULT_BOOTSTRAP if plaintext else DEFAULT_SASL_BOOTSTRAP)
    if admin_password_file is not None:
        admin_password = admin_password_file.read_text().strip()
    if not admin_password and not plaintext:
        raise typer.BadParameter("give the admin password with --admin-password-file or REGSOSEK_ACL_ADMIN_PASSWORD")
    principals = [*SERVICE_PRINCIPALS, "admin", *registry.principals()]
    passwords = _passwords(credentials_dir, principals)
    security = {} if plaintext else scram_options(admin_user, admin_password or "")
    try:
        created_topics = ensure_subscriber_topics(bootstrap, registry, **security)
        admin = admin_client(bootstrap, client_id="regsosek-acl-sync", **security)
    except (KafkaError, OSError, RuntimeError) as exc:
        who = "the operator listener" if plaintext else admin_user
        typer.secho(f"error: cannot reach {bootstrap} as {who}: {type(exc).__name__}", fg="red", err=True)
        raise typer.Exit(code=1) from None
    try:
        report = sync(admin, registry, passwords)
    except (AclSyncError, ScramError, KafkaError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(code=1) from None
    finally:
        admin.close()
    for topic in created_topics:
        typer.echo(f"topic created   {topic}")
    for user in report.users_set:
        typer.echo(f"user set        {user}")
    for user in report.users_deleted:
        typer.echo(f"user deleted    {user}")
    for grant in report.created:
        typer.echo(f"acl created     {grant}")
    for grant in report.deleted:
        typer.echo(f"acl deleted     {grant}")
    typer.echo(
        f"{len(report.created)} created, {len(report.deleted)} deleted, {report.unchanged} unchanged "
        f"(registry version {registry.registry_version})"
    )


def register(app: typer.Typer) -> None:
    """Add the `acl` group."""
    app.add_typer(acl_app, name="acl")
