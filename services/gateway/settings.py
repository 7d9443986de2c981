"""The gateway's settings: one frozen pydantic-settings object, the only place the gateway reads env.

Every field can be set with an environment variable prefixed `REGSOSEK_GATEWAY_` (e.g.
`REGSOSEK_GATEWAY_BOOTSTRAP=127.0.0.1:19092`) or passed as a keyword argument, which wins over env.
Bearer tokens map to enumerator teams and the regions they may write; they come from
`REGSOSEK_GATEWAY_TOKENS` (a JSON object `{"<token>": {"team": "<team id>", "regions": ["3603", ...]}}`)
and/or a file named by `REGSOSEK_GATEWAY_TOKENS_FILE` in the same format. Region codes are prefixes of
the family key: province (2 digits), regency (4), district (7) or village (10). The older form
`{"<token>": "<team id>"}` is still read and grants every region (the gateway warns at start-up).
SASL/SCRAM on a secured broker (off by default), over PLAINTEXT or TLS: the shared block of
services/kafka/security.py, e.g. `REGSOSEK_GATEWAY_SASL_USERNAME`, `REGSOSEK_GATEWAY_SASL_PASSWORD_FILE`,
`REGSOSEK_GATEWAY_SECURITY_PROTOCOL=SASL_SSL`, `REGSOSEK_GATEWAY_SSL_CAFILE` (docs/subscriptions.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from contracts.topics import MAX_PAYLOAD_BYTES, SUBMISSIONS
from services.gateway.auth import TeamGrant, grant_of, is_region_code
from services.kafka.security import KafkaSecurity

#: Shortest token accepted; shorter ones are guessable, so they are refused at start-up.
MIN_TOKEN_LENGTH = 16


class GatewaySettingsError(ValueError):
    """The gateway's settings are unusable (bad tokens file, weak token); the message says how to fix it."""


class GatewaySettings(KafkaSecurity):
    """Everything the ingest gateway needs to run; immutable once built."""

    # hide_input_in_errors: a settings error must not print the token map it was given.
    model_config = SettingsConfigDict(
        env_prefix="REGSOSEK_GATEWAY_", frozen=True, extra="forbid", hide_input_in_errors=True
    )

    bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers, host:port[,host:port]")
    topic: str = Field(default=SUBMISSIONS, description="topic the submissions are produced to")
    host: str = Field(default="127.0.0.1", description="address the HTTP server listens on")
    port: int = Field(default=8080, ge=0, le=65535, description="port the HTTP server listens on")
    max_body_bytes: int = Field(
        default=MAX_PAYLOAD_BYTES, gt=0, description="largest accepted request body (413 above)"
    )
    produce_timeout_s: float = Field(default=5.0, gt=0, description="longest wait for the broker's acknowledgement")
    connect_backoff_s: float = Field(
        default=1.0, ge=0, description="after a failed broker connection, answer 503 at once for this long"
    )
    client_id: str = Field(default="regsosek-gateway", description="Kafka client id (visible in broker logs)")
    feedback_topic: str = Field(
        default="", description="field feedback topic served at GET /v1/feedback (field.feedback.v1); empty: off"
    )
    # Values are checked by `grants()`, not by pydantic: its errors would name the dict key, the token.
    tokens: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,
        description='bearer token -> team and regions, JSON {"<token>": {"team": "<team>", "regions": ["3603"]}}',
    )
    tokens_file: Path | None = Field(default=None, description="JSON file with more token entries, same format")

    @model_validator(mode="after")
    def _check_tokens(self) -> Self:
        for token, grant in self.grants().items():
            team = grant.team
            if len(token) < MIN_TOKEN_LENGTH:
                raise GatewaySettingsError(
                    f"the token of team {team!r} is shorter than {MIN_TOKEN_LENGTH} characters; "
                    "use a long random one, e.g. from "
                    "`python -c 'import secrets; print(secrets.token_urlsafe())'`"
                )
            if not team.strip():
                raise GatewaySettingsError("a token maps to an empty team id; every token needs its team")
        return self

    def grants(self) -> dict[str, TeamGrant]:
        """Token -> team and regions, from the settings and the tokens file together (the file wins)."""
        merged = {token: parse_grant(value, "REGSOSEK_GATEWAY_TOKENS") for token, value in self.tokens.items()}
        if self.tokens_file is not None:
            merged.update(load_tokens_file(self.tokens_file))
        return merged

    def all_tokens(self) -> dict[str, str]:
        """Token -> team id from the settings and the tokens file together (the file wins on a clash)."""
        return {token: grant.team for token, grant in self.grants().items()}


_FORMAT = '{"<token>": {"team": "<team id>", "regions": ["<region code>", ...]}} (or {"<token>": "<team id>"})'


def parse_grant(value: object, where: object) -> TeamGrant:
    """One token entry: a team id (every region) or {"team": ..., "regions": [...]}; errors never name
    the token."""
    if isinstance(value, str):
        return grant_of(value)
    if not isinstance(value, dict):
        raise GatewaySettingsError(f"{where} must be a JSON object {_FORMAT}")
    team, regions = value.get("team"), value.get("regions")
    if set(value) != {"team", "regions"} or not isinstance(team, str):
        raise GatewaySettingsError(f"{where}: each entry needs exactly a team and its regions: {_FORMAT}")
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) for r in regions):
        raise GatewaySettingsError(f"{where}: team {team!r} needs a non-empty list of region codes")
    bad = sorted(r for r in regions if not is_region_code(r))
    if bad:
        raise GatewaySettingsError(
            f"{where}: team {team!r} has region codes {bad} that are not 2, 4, 7 or 10 digits "
            "(province, regency, district or village, as at the start of the family key)"
        )
    return grant_of(team, regions)


def load_tokens_file(path: Path) -> dict[str, TeamGrant]:
    """Read a JSON object of bearer token -> team and regions; a clear error when missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GatewaySettingsError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise GatewaySettingsError(f"the tokens file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GatewaySettingsError(f"the tokens file {path} must be a JSON object {_FORMAT}")
    return {str(token): parse_grant(value, f"the tokens file {path}") for token, value in data.items()}
