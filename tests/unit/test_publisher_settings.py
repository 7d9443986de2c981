"""Publisher settings as docker compose passes them: empty SASL entries mean the plaintext listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.publisher.settings import PublisherSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [k for k in os.environ if k.startswith("REGSOSEK_PUBLISHER_")]:
        monkeypatch.delenv(name)


def test_empty_sasl_entries_from_the_env_file_mean_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SASL_USERNAME", "SASL_PASSWORD", "SASL_PASSWORD_FILE"):
        monkeypatch.setenv(f"REGSOSEK_PUBLISHER_{name}", "")
    monkeypatch.setenv("REGSOSEK_PUBLISHER_PSEUDONYM_KEYS", "{}")
    settings = PublisherSettings()
    assert (settings.sasl_username, settings.sasl_password, settings.sasl_password_file) == (None, None, None)
    assert settings.kafka_python_security() == {} and settings.secrets() == {}


def test_sasl_login_from_the_env_or_a_password_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_USERNAME", "regsosek-publisher")
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_PASSWORD", "")
    secret = tmp_path / "regsosek-publisher.password"
    secret.write_text("from-a-file-0123\n")
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_PASSWORD_FILE", str(secret))
    assert PublisherSettings().kafka_python_security() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "regsosek-publisher",
        "sasl_plain_password": "from-a-file-0123",
    }
    monkeypatch.setenv("REGSOSEK_PUBLISHER_SASL_PASSWORD", "from-the-env-0123")
    assert PublisherSettings().kafka_python_security()["sasl_plain_password"] == "from-the-env-0123"
    # The password never shows in the settings' repr (logged at start-up by careless code).
    assert "from-the-env-0123" not in repr(PublisherSettings())
