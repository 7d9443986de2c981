"""`regsosek serve publisher`: linkage outputs -> per-subscriber notification topics (foreground)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from services.commands.options import bootstrap_option, settings_problems

_log = logging.getLogger("services.publisher")


def serve_publisher(
    bootstrap: str = bootstrap_option("REGSOSEK_PUBLISHER_BOOTSTRAP"),
    registry: Path | None = typer.Option(None, "--registry", help="Registry file [env ..._REGISTRY_PATH]."),
    disclosure_db: Path | None = typer.Option(
        None, "--disclosure-db", help="Disclosure log [env REGSOSEK_PUBLISHER_DISCLOSURE_DB]."
    ),
    keys_dir: Path | None = typer.Option(
        None, "--keys-dir", help="Folder of <subscriber>.key pseudonym secrets [env ..._PSEUDONYM_KEYS_DIR]."
    ),
    metrics_port: int | None = typer.Option(None, "--metrics-port", help="Serve Prometheus /metrics here."),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="Address of the /metrics endpoint."),
    log_level: str = typer.Option("info", "--log-level", help="Python log level."),
) -> None:
    """Publish purpose-bound, pseudonymised notifications to every subscriber in the registry.

    Exits 1 (offsets of the current batch not committed) when the disclosure log cannot be written,
    before anything of the batch is sent, or when the broker does not acknowledge the notifications;
    also when the backfill of a new subscription cannot read the linkage topics (nothing of it is sent).
    """
    from integration.pseudonyms import KeyRing
    from services.privacy.disclosure import DisclosureLog, DisclosureLogError
    from services.publisher.backfill import BackfillError
    from services.publisher.core import Publisher
    from services.publisher.loop import LoopConfig, PublisherLoop, PublishError
    from services.publisher.registry_file import RegistryFileError, load_registry
    from services.publisher.settings import PublisherSettings
    from services.publisher.topics import ensure_subscriber_topics
    from services.shutdown import ShutdownDeadline

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    given: dict[str, Any] = {
        "bootstrap": bootstrap,
        "registry_path": registry,
        "disclosure_db": disclosure_db,
        "pseudonym_keys_dir": keys_dir,
    }
    try:
        settings = PublisherSettings(**{k: v for k, v in given.items() if v is not None})
        subscriptions = load_registry(settings.registry_path)
    except ValidationError as exc:
        raise typer.BadParameter(settings_problems(exc)) from None
    except RegistryFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--registry") from None
    try:
        keys = KeyRing(settings.secrets())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    missing = keys.missing([s.subscriber_id for s in subscriptions.subscriptions])
    if missing:
        raise typer.BadParameter(
            f"no pseudonym secret for: {', '.join(missing)} (files <keys dir>/<id>.key or "
            "REGSOSEK_PUBLISHER_PSEUDONYM_KEYS)"
        )
    try:
        # Before any broker work: without a writable disclosure log nothing may be sent.
        log = DisclosureLog(settings.disclosure_db)
        publisher = Publisher(subscriptions, keys, log)
    except DisclosureLogError as exc:
        _log.error("publisher not started: %s", exc)
        raise typer.Exit(code=1) from None
    security = settings.kafka_python_security()
    ensure_subscriber_topics(settings.bootstrap, subscriptions, **security)
    if publisher.stats.in_doubt:
        # Counts only. These entries stay recorded; the redelivered input sends them again.
        _log.warning(
            "publisher: %d disclosures of a stopped run are in doubt (may have been delivered)",
            publisher.stats.in_doubt,
        )
    metrics = None
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry

        from services.observability.exposition import serve_metrics
        from services.publisher.metrics import PublisherMetrics

        metrics = PublisherMetrics(CollectorRegistry(), subscriptions)
        serve_metrics(metrics.registry, metrics_host, metrics_port)
    loop = PublisherLoop(
        publisher,
        LoopConfig(
            settings.bootstrap,
            settings.group_id,
            settings.client_id,
            settings.poll_timeout_ms,
            settings.max_poll_records,
            progress_interval_s=settings.progress_interval_seconds,
            progress_every_records=settings.progress_every_records,
        ),
        metrics=metrics,
        **security,
    )
    # Closing the clients after a fatal error or SIGTERM may hang (an unreachable broker): the deadline
    # ends the process then, so a supervisor can restart it.
    deadline = ShutdownDeadline(settings.shutdown_deadline_seconds)

    def on_sigterm(*_: object) -> None:
        deadline.arm("SIGTERM")
        loop.stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    typer.echo(
        f"publisher: {len(subscriptions.subscriptions)} subscriptions "
        f"(registry version {subscriptions.registry_version}) from {settings.bootstrap}"
    )
    try:
        loop.run()
    except KeyboardInterrupt:
        deadline.arm("SIGINT")
    except (DisclosureLogError, PublishError, BackfillError) as exc:
        # Fatal: the batch's offsets were not committed, so a restart redelivers it (same message ids).
        deadline.arm(f"a fatal {type(exc).__name__}")
        _log.error("publisher stopped: %s", exc)
        raise typer.Exit(code=1) from None
    except BaseException as exc:
        deadline.arm(f"a fatal {type(exc).__name__}")
        raise
    finally:
        loop.close()
        log.close()


def register_serve(serve_app: typer.Typer) -> None:
    """Add `publisher` to the `serve` group."""
    serve_app.command("publisher")(serve_publisher)
