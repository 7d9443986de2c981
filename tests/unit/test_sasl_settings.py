"""SASL/SCRAM client settings of the gateway and the linker: off by default, from env or a file."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials

from services.gateway.settings import GatewaySettings, GatewaySettingsError
from services.linker.settings import LinkerSettings


def test_gateway_sasl_is_off_by_default_and_empty_values_mean_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().kafka_security() == {}
    # docker compose passes `${VAR}` of an empty .env entry as "".
    monkeypatch.setenv("REGSOSEK_GATEWAY_SASL_USERNAME", "")
    monkeypatch.setenv("REGSOSEK_GATEWAY_SASL_PASSWORD", "")
    assert GatewaySettings().kafka_security() == {}


def test_gateway_sasl_from_a_password_file_or_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "gateway.password"
    secret.write_text("from-a-file-0123\n")
    assert GatewaySettings(sasl_username="regsosek-gateway", sasl_password_file=secret).kafka_security() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "regsosek-gateway", "sasl_plain_password": "from-a-file-0123",
    }  # fmt: skip
    monkeypatch.setenv("REGSOSEK_GATEWAY_SASL_USERNAME", "regsosek-gateway")
    monkeypatch.setenv("REGSOSEK_GATEWAY_SASL_PASSWORD", "from-the-env-0123")
    monkeypatch.setenv("REGSOSEK_GATEWAY_SECURITY_PROTOCOL", "SASL_SSL")
    options = GatewaySettings().kafka_security()
    assert (options["sasl_plain_password"], options["security_protocol"]) == ("from-the-env-0123", "SASL_SSL")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "from-the-env-0123" not in repr(GatewaySettings())
    monkeypatch.delenv("REGSOSEK_GATEWAY_SASL_PASSWORD")
    with pytest.raises(GatewaySettingsError, match="neither sasl_password nor sasl_password_file"):
        GatewaySettings().kafka_security()


def test_linker_broker_credentials(tmp_path: Path) -> None:
    assert LinkerSettings().broker_credentials() is None
    assert LinkerSettings(sasl_username="").broker_credentials() is None
    secret = tmp_path / "linker.password"
    secret.write_text("linker-secret-0123\n")
    creds = LinkerSettings(sasl_username="regsosek-linker", sasl_password_file=secret).broker_credentials()
    assert isinstance(creds, SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value, creds.protocol.value) == (
        "regsosek-linker", "linker-secret-0123", "SCRAM-SHA-512", "SASL_PLAINTEXT")  # fmt: skip
    with pytest.raises(ValueError, match="without a password"):
        LinkerSettings(sasl_username="regsosek-linker").broker_credentials()
