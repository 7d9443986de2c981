"""`regsosek serve gateway`: the HTTP ingest gateway for CAPI devices (uvicorn in the foreground)."""

from __future__ import annotations

import logging.config
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from services.commands.options import bootstrap_option, settings_problems


def serve_gateway(
    host: str | None = typer.Option(None, "--host", help="Listen address [env REGSOSEK_GATEWAY_HOST]."),
    port: int | None = typer.Option(None, "--port", help="Listen port [env REGSOSEK_GATEWAY_PORT]."),
    bootstrap: str = bootstrap_option("REGSOSEK_GATEWAY_BOOTSTRAP"),
    topic: str | None = typer.Option(None, "--topic", help="Submissions topic [env REGSOSEK_GATEWAY_TOPIC]."),
    tokens_file: Path | None = typer.Option(
        None, "--tokens-file", help='JSON {"<token>": "<team id>"} [env REGSOSEK_GATEWAY_TOKENS_FILE].'
    ),
    max_body_bytes: int | None = typer.Option(
        None,
        "--max-body-bytes",
        help="Largest accepted body; 413 above [env REGSOSEK_GATEWAY_MAX_BODY_BYTES].",
    ),
    produce_timeout_s: float | None = typer.Option(
        None, "--produce-timeout", help="Seconds to wait for the broker's ack before 503."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    log_format: str = typer.Option(
        "text", "--log-format", help="text (control characters escaped) or json (one object per line)."
    ),
) -> None:
    """Serve POST /v1/submissions (token auth, contract validation, produce with acks=all)."""
    import uvicorn

    from services.gateway.app import build_app
    from services.gateway.logs import logging_config
    from services.gateway.settings import GatewaySettings

    if log_format not in ("text", "json"):
        raise typer.BadParameter("--log-format must be text or json")

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "bootstrap": bootstrap,
        "topic": topic,
        "tokens_file": tokens_file,
        "max_body_bytes": max_body_bytes,
        "produce_timeout_s": produce_timeout_s,
    }
    try:
        settings = GatewaySettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(settings_problems(exc)) from None
    except SettingsError as exc:  # e.g. REGSOSEK_GATEWAY_TOKENS is not valid JSON
        raise typer.BadParameter(f"{exc}; REGSOSEK_GATEWAY_TOKENS must be a JSON object") from None
    if not settings.all_tokens():
        raise typer.BadParameter(
            "no team tokens configured: set REGSOSEK_GATEWAY_TOKENS or pass --tokens-file "
            '(JSON {"<token>": "<team id>"}); without them every request would get 401'
        )
    typer.echo(
        f"gateway on http://{settings.host}:{settings.port} -> {settings.bootstrap} topic {settings.topic} "
        f"({len(settings.all_tokens())} team tokens)"
    )
    # The gateway's own lines (team id, submission id, partition, offset; never personal data) and
    # uvicorn's share one level and one formatter, which escapes control characters (no forged lines).
    config = logging_config(log_level, "json" if log_format == "json" else "text")
    # Configured before the app is built, so that build_app's own warnings (e.g. tokens without regions)
    # go through the same escaping formatter as every later line; uvicorn applies the same config again.
    logging.config.dictConfig(config)
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_level=log_level, log_config=config)


def register_serve(serve_app: typer.Typer) -> None:
    """Add `gateway` to the `serve` group."""
    serve_app.command("gateway")(serve_gateway)
