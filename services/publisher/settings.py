"""The publisher's settings: ONE frozen pydantic-settings object, the only place the publisher reads env.

Every field can be set with `REGSOSEK_PUBLISHER_<FIELD>`. Pseudonym secrets are per subscriber and
never live in the repository: either files `<pseudonym_keys_dir>/<subscriber id>.key` (the content is
the secret, at least 32 bytes) or `REGSOSEK_PUBLISHER_PSEUDONYM_KEYS`, a JSON object
`{"<subscriber id>": "<secret>"}` (e.g. injected from a secret store). SASL/SCRAM on a secured broker,
over PLAINTEXT or TLS, is the shared block of services/kafka/security.py (`REGSOSEK_PUBLISHER_SASL_USERNAME`,
`..._SASL_PASSWORD_FILE`, `..._SECURITY_PROTOCOL=SASL_SSL`, `..._SSL_CAFILE`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kafka.security import KafkaSecurity
from services.shutdown import DEFAULT_SHUTDOWN_DEADLINE_S


class PublisherSettings(KafkaSecurity):
    """How the publisher connects, where its registry and disclosure log are, and its secrets."""

    model_config = SettingsConfigDict(env_prefix="REGSOSEK_PUBLISHER_", frozen=True, extra="forbid")

    bootstrap: str = "127.0.0.1:19092"
    group_id: str = "regsosek-publisher"
    client_id: str = "regsosek-publisher"
    registry_path: Path = Path("subscriptions.json")
    # The disclosure log and the delivery state (one SQLite file).
    disclosure_db: Path = Path(".run/publisher/disclosures.sqlite")
    pseudonym_keys_dir: Path | None = None
    # The same JSON object as `pseudonym_keys`, in a file (a compose secret at /run/secrets/...).
    pseudonym_keys_file: Path | None = None
    pseudonym_keys: dict[str, SecretStr] = Field(default_factory=dict, repr=False)
    poll_timeout_ms: int = Field(default=500, ge=10)
    max_poll_records: int = Field(default=500, ge=1)
    # One progress line at INFO every this many seconds or input records, whichever first; 0 turns a
    # trigger off (services/publisher/progress.py; counts only, no personal data).
    progress_interval_seconds: float = Field(default=30.0, ge=0)
    progress_every_records: int = Field(default=10_000, ge=0)
    # After a fatal error or SIGTERM the process is gone within this time, hung or not (services/shutdown.py).
    shutdown_deadline_seconds: float = Field(default=DEFAULT_SHUTDOWN_DEADLINE_S, gt=0)

    def secrets(self) -> dict[str, bytes]:
        """Pseudonym secrets by subscriber id: key files, then the keys file, then env entries (later wins)."""
        found: dict[str, bytes] = {}
        if self.pseudonym_keys_dir is not None and self.pseudonym_keys_dir.is_dir():
            for path in sorted(self.pseudonym_keys_dir.glob("*.key")):
                found[path.stem] = path.read_bytes().strip()
        if self.pseudonym_keys_file is not None:
            found.update(load_keys_file(self.pseudonym_keys_file))
        for sid, secret in self.pseudonym_keys.items():
            found[sid] = secret.get_secret_value().encode()
        return found


def load_keys_file(path: Path) -> dict[str, bytes]:
    """`{"<subscriber id>": "<secret>"}` from a JSON file; ValueError names the file, never a secret."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the pseudonym keys file {path}: {exc.strerror}") from exc
    except ValueError:
        raise ValueError(f"the pseudonym keys file {path} is not valid JSON") from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ValueError(f'the pseudonym keys file {path} must be a JSON object {{"<subscriber id>": "<secret>"}}')
    return {str(sid): secret.encode() for sid, secret in doc.items()}
