"""The Kafka security settings every service shares: SASL/SCRAM over PLAINTEXT or TLS (SASL_SSL).

One block of fields, inherited by the gateway, linker, publisher and review settings, so each reads
them with its own prefix (e.g. `REGSOSEK_PUBLISHER_SASL_USERNAME`, `REGSOSEK_GATEWAY_SSL_CAFILE`):

- `sasl_username`: the SCRAM user (principal). Unset (or empty, as compose passes an unset variable):
  the service connects without SASL (the loopback PLAINTEXT listener).
- `sasl_password` or `sasl_password_file` (a compose/Kubernetes secret): required with a username. A
  username without either is refused when the settings are built (one-line error at start).
- `security_protocol`: `SASL_PLAINTEXT` (default) or `SASL_SSL`.
- `sasl_mechanism`: `SCRAM-SHA-512` (default) or `SCRAM-SHA-256`.
- `ssl_cafile`: the CA bundle (PEM) that verifies the broker's certificate with SASL_SSL; unset: the
  system's CAs. `ssl_certfile` / `ssl_keyfile`: a client certificate (mutual TLS), optional.
  `ssl_check_hostname`: verify the broker's host name (default true).

The same settings become the keyword arguments of each client library: `kafka_python_security()`
(publisher, review, admin), `aiokafka_security()` (gateway, the linker's change reader) and `faust_credentials()`
(the linker's faust app).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

SecurityProtocol = Literal["SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


def scram_options(
    username: str,
    password: str,
    *,
    protocol: SecurityProtocol = "SASL_PLAINTEXT",
    mechanism: SaslMechanism = "SCRAM-SHA-512",
) -> dict[str, Any]:
    """kafka-python client options for a SCRAM login (no TLS options)."""
    return {
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


class KafkaSecurity(BaseSettings):
    """SASL/SCRAM and TLS settings of one service's Kafka clients (a base of its settings class)."""

    # SASL on a secured broker; off while no username is set (an empty value, as compose passes it, too).
    sasl_username: str | None = Field(default=None, description="SCRAM user (principal), e.g. regsosek-gateway")
    sasl_password: SecretStr | None = Field(default=None, repr=False, description="SCRAM password")
    sasl_password_file: Path | None = Field(default=None, description="file holding the SCRAM password")
    security_protocol: SecurityProtocol = Field(default="SASL_PLAINTEXT", description="SASL_PLAINTEXT or SASL_SSL")
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    ssl_cafile: Path | None = Field(default=None, description="CA bundle (PEM) verifying the broker (SASL_SSL)")
    ssl_certfile: Path | None = Field(default=None, description="client certificate (PEM), mutual TLS")
    ssl_keyfile: Path | None = Field(default=None, description="client private key (PEM), mutual TLS")
    ssl_check_hostname: bool = Field(default=True, description="verify the broker's host name (SASL_SSL)")

    @field_validator(
        "sasl_username",
        "sasl_password",
        "sasl_password_file",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker compose passes `${VAR}` of an empty .env entry as "": that means "not configured".
        return None if value == "" else value

    def _env(self, field: str) -> str:
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()

    @model_validator(mode="after")
    def _check_security(self) -> Self:
        if self.sasl_username is None:
            return self
        if self.sasl_password is None and self.sasl_password_file is None:
            raise ValueError(
                f"{self._env('sasl_username')} is set without {self._env('sasl_password')} or "
                f"{self._env('sasl_password_file')}"
            )
        if self.sasl_password is None and self.sasl_password_file is not None:
            self._read(self.sasl_password_file, "sasl_password_file")
        tls_files = [name for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, name)]
        if tls_files and self.security_protocol != "SASL_SSL":
            raise ValueError(
                f"{self._env(tls_files[0])} is set but {self._env('security_protocol')} is "
                f"{self.security_protocol}; set it to SASL_SSL"
            )
        for name in tls_files:
            path = getattr(self, name)
            if not path.is_file():
                raise ValueError(f"{self._env(name)}: {path} is not a file")
        return self

    def _read(self, path: Path, field: str) -> str:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{self._env(field)}: cannot read {path}: {exc.strerror}") from None
        if not text:
            raise ValueError(f"{self._env(field)}: {path} is empty")
        return text

    @property
    def sasl_enabled(self) -> bool:
        """True when the service logs in with SASL/SCRAM."""
        return self.sasl_username is not None

    def _password(self) -> str:
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        assert self.sasl_password_file is not None  # the validator guarantees one of the two
        return self._read(self.sasl_password_file, "sasl_password_file")

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of SASL_SSL: the CA bundle (or the system CAs), the client certificate if any."""
        context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None)
        return context

    def kafka_python_security(self) -> dict[str, Any]:
        """kafka-python keyword arguments (KafkaConsumer, KafkaProducer, KafkaAdminClient), {} without SASL."""
        if self.sasl_username is None:
            return {}
        options = scram_options(
            self.sasl_username, self._password(), protocol=self.security_protocol, mechanism=self.sasl_mechanism
        )
        if self.security_protocol == "SASL_SSL":
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, name)
                if path is not None:
                    options[name] = str(path)
        return options

    def aiokafka_security(self) -> dict[str, Any]:
        """aiokafka keyword arguments (AIOKafkaProducer, AIOKafkaConsumer), {} without SASL."""
        if self.sasl_username is None:
            return {}
        options = scram_options(
            self.sasl_username, self._password(), protocol=self.security_protocol, mechanism=self.sasl_mechanism
        )
        if self.security_protocol == "SASL_SSL":
            options["ssl_context"] = self.ssl_context()
        return options

    def faust_credentials(self) -> Any:
        """faust `broker_credentials` (its consumer, producer and admin client), None without SASL."""
        if self.sasl_username is None:
            return None
        from faust.auth import SASLCredentials

        context = self.ssl_context() if self.security_protocol == "SASL_SSL" else None
        return SASLCredentials(
            username=self.sasl_username, password=self._password(), mechanism=self.sasl_mechanism, ssl_context=context
        )
