"""Gateway settings (env prefix, tokens from env and file, refusals) and token authentication."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.auth import TeamTokens
from services.gateway.settings import GatewaySettings, GatewaySettingsError, load_tokens_file

STRONG = "s3cr3t-token-for-team-a-xyz"


def test_settings_come_from_prefixed_env_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGSOSEK_GATEWAY_BOOTSTRAP", "10.0.0.5:9092")
    monkeypatch.setenv("REGSOSEK_GATEWAY_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("REGSOSEK_GATEWAY_PORT", "9000")
    monkeypatch.setenv("REGSOSEK_GATEWAY_TOKENS", json.dumps({STRONG: "team-a"}))
    settings = GatewaySettings(port=9100)
    assert settings.bootstrap == "10.0.0.5:9092"
    assert settings.max_body_bytes == 2048
    assert settings.port == 9100
    assert settings.all_tokens() == {STRONG: "team-a"}
    assert settings.topic == "regsosek.submissions.v1"


def test_defaults_and_frozen() -> None:
    settings = GatewaySettings()
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.all_tokens() == {}
    with pytest.raises(ValidationError):
        settings.port = 1


def test_tokens_never_appear_in_the_settings_repr() -> None:
    assert STRONG not in repr(GatewaySettings(tokens={STRONG: "team-a"}))


def test_tokens_file_is_merged_with_env_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = "another-long-token-for-team-b"
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({other: "team-b"}))
    monkeypatch.setenv("REGSOSEK_GATEWAY_TOKENS_FILE", str(path))
    settings = GatewaySettings(tokens={STRONG: "team-a"})
    assert settings.all_tokens() == {STRONG: "team-a", other: "team-b"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "must be a JSON object"),
        ('{"tok": 5}', "must be a JSON object"),
    ],
)
def test_malformed_tokens_file_is_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(GatewaySettingsError, match=message):
        load_tokens_file(path)
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(tokens_file=path)


def test_missing_tokens_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read the tokens file"):
        GatewaySettings(tokens_file=tmp_path / "absent.json")


def test_short_tokens_and_empty_teams_are_refused() -> None:
    with pytest.raises(ValidationError, match="shorter than 16"):
        GatewaySettings(tokens={"short": "team-a"})
    with pytest.raises(ValidationError, match="empty team id"):
        GatewaySettings(tokens={STRONG: " "})


def test_team_tokens_lookup() -> None:
    tokens = TeamTokens({STRONG: "team-a", "second-token-of-team-b-123": "team-b"})
    assert len(tokens) == 2
    assert tokens.team_for(STRONG) == "team-a"
    assert tokens.team_for("second-token-of-team-b-123") == "team-b"
    assert tokens.team_for(STRONG + "x") is None
    assert tokens.team_for("") is None
    assert tokens.team_for(None) is None
