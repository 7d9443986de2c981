"""The Kafka security block every service shares (services/kafka/security.py): SASL/SCRAM over PLAINTEXT
or TLS, off by default, from env or files, and one clear error when a password is missing."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest
import typer
from aiokafka import AIOKafkaProducer
from faust.auth import SASLCredentials
from kafka import KafkaConsumer
from pydantic import ValidationError
from typer.testing import CliRunner

from services.gateway.settings import GatewaySettings
from services.kafka.security import KafkaSecurity
from services.linker.settings import LinkerSettings
from services.publisher.settings import PublisherSettings
from services.review.settings import ReviewSettings

SERVICES: dict[str, type[KafkaSecurity]] = {
    "REGSOSEK_GATEWAY_": GatewaySettings,
    "REGSOSEK_LINKER_": LinkerSettings,
    "REGSOSEK_PUBLISHER_": PublisherSettings,
    "REGSOSEK_REVIEW_": ReviewSettings,
}
# A real CA bundle (PEM) to stand in for a deployment's CA file.
CA_FILE = Path(certifi.where())
CA_COUNT = CA_FILE.read_text().count("BEGIN CERTIFICATE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [k for k in os.environ if k.startswith(tuple(SERVICES))]:
        monkeypatch.delenv(name)


@pytest.fixture(params=list(SERVICES), ids=[p.split("_")[1].lower() for p in SERVICES])
def service(request: pytest.FixtureRequest) -> tuple[str, type[KafkaSecurity]]:
    return request.param, SERVICES[request.param]


def test_off_by_default_and_empty_values_mean_off(
    service: tuple[str, type[KafkaSecurity]], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, settings_class = service
    # docker compose passes `${VAR}` of an empty .env entry as "".
    for name in ("SASL_USERNAME", "SASL_PASSWORD", "SASL_PASSWORD_FILE", "SSL_CAFILE"):
        monkeypatch.setenv(prefix + name, "")
    settings = settings_class()
    assert not settings.sasl_enabled
    assert settings.kafka_python_security() == {} and settings.aiokafka_security() == {}
    assert settings.faust_credentials() is None


def test_sasl_plaintext_from_a_password_file(
    service: tuple[str, type[KafkaSecurity]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, settings_class = service
    secret = tmp_path / "service.password"
    secret.write_text("from-a-file-0123\n")
    monkeypatch.setenv(prefix + "SASL_USERNAME", "svc")
    monkeypatch.setenv(prefix + "SASL_PASSWORD_FILE", str(secret))
    expected = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "from-a-file-0123",
    }
    settings = settings_class()
    assert settings.kafka_python_security() == expected
    assert settings.aiokafka_security() == expected
    creds = settings.faust_credentials()
    assert isinstance(creds, SASLCredentials) and creds.ssl_context is None
    assert (creds.username, creds.password, creds.mechanism.value, creds.protocol.value) == (
        "svc",
        "from-a-file-0123",
        "SCRAM-SHA-512",
        "SASL_PLAINTEXT",
    )
    # The env password wins over the file, and never shows in the settings' repr.
    monkeypatch.setenv(prefix + "SASL_PASSWORD", "from-the-env-0123")
    assert settings_class().kafka_python_security()["sasl_plain_password"] == "from-the-env-0123"
    assert "from-the-env-0123" not in repr(settings_class())


def _sasl_ssl(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prefix + "SASL_USERNAME", "svc")
    monkeypatch.setenv(prefix + "SASL_PASSWORD", "tls-secret-0123")
    monkeypatch.setenv(prefix + "SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv(prefix + "SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv(prefix + "SSL_CAFILE", str(CA_FILE))


def test_sasl_ssl_reaches_the_kafka_python_options(
    service: tuple[str, type[KafkaSecurity]], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, settings_class = service
    _sasl_ssl(prefix, monkeypatch)
    options = settings_class().kafka_python_security()
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "tls-secret-0123",
        "ssl_check_hostname": True,
        "ssl_cafile": str(CA_FILE),
    }
    # kafka-python takes every one of them (it refuses unknown options); api_version: no broker probe.
    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 8), **options)
    try:
        assert {k: consumer.config[k] for k in options} == options
    finally:
        consumer.close()


def test_sasl_ssl_reaches_the_aiokafka_and_faust_options(
    service: tuple[str, type[KafkaSecurity]], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, settings_class = service
    _sasl_ssl(prefix, monkeypatch)
    monkeypatch.setenv(prefix + "SSL_CHECK_HOSTNAME", "false")
    settings = settings_class()
    options = settings.aiokafka_security()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "tls-secret-0123",
    }
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert context.cert_store_stats()["x509_ca"] == CA_COUNT  # exactly the given CA file
    creds = settings.faust_credentials()
    assert creds.protocol.value == "SASL_SSL" and isinstance(creds.ssl_context, ssl.SSLContext)

    async def build() -> Any:
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **settings.aiokafka_security())
        try:
            return producer.client._security_protocol, producer.client._ssl_context
        finally:
            await producer.stop()

    protocol, client_context = asyncio.run(build())
    assert protocol == "SASL_SSL" and isinstance(client_context, ssl.SSLContext)


def test_sasl_ssl_without_a_ca_file_uses_the_system_cas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_USERNAME", "svc")
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_PASSWORD", "tls-secret-0123")
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SECURITY_PROTOCOL", "SASL_SSL")
    settings = PublisherSettings()
    assert "ssl_cafile" not in settings.kafka_python_security()
    assert settings.aiokafka_security()["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_a_username_without_a_password_is_refused_when_built(
    service: tuple[str, type[KafkaSecurity]], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, settings_class = service
    monkeypatch.setenv(prefix + "SASL_USERNAME", "svc")
    with pytest.raises(ValidationError) as caught:
        settings_class()
    assert caught.value.errors()[0]["msg"] == (
        f"Value error, {prefix}SASL_USERNAME is set without {prefix}SASL_PASSWORD or {prefix}SASL_PASSWORD_FILE"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SSL_CAFILE": str(CA_FILE)}, "SSL_CAFILE is set but REGSOSEK_PUBLISHER_SECURITY_PROTOCOL is SASL_PLAINTEXT"),
        ({"SECURITY_PROTOCOL": "SASL_SSL", "SSL_CAFILE": "/no/such/ca.pem"}, "CAFILE: /no/such/ca.pem is not a file"),
        ({"SASL_PASSWORD_FILE": "/no/such/password"}, "SASL_PASSWORD_FILE: cannot read /no/such/password"),
    ],
)
def test_unusable_tls_and_password_files_are_refused(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_USERNAME", "svc")
    if "SASL_PASSWORD_FILE" not in env:
        monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_PASSWORD", "a-password-0123")
    for name, value in env.items():
        monkeypatch.setenv("REGSOSEK_PUBLISHER_" + name, value)
    with pytest.raises(ValidationError, match=message):
        PublisherSettings()


@pytest.mark.parametrize("command", ["publisher", "linker", "review", "gateway"])
def test_serve_commands_stop_with_one_line_when_the_password_is_missing(
    command: str, cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"REGSOSEK_{command.upper()}_"
    monkeypatch.setenv(prefix + "SASL_USERNAME", "svc")
    done = CliRunner().invoke(cli_app, ["serve", command], env={"COLUMNS": "250"})
    assert done.exit_code == 2, done.output
    assert f"settings: {prefix}SASL_USERNAME is set without {prefix}SASL_PASSWORD or " in done.output
    assert "Traceback" not in done.output
