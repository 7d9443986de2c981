"""Per-subscriber pseudonyms: a keyed hash (HMAC-SHA256) of an internal id with the subscriber's secret.

The same person gets the same pseudonym in every notification to one subscriber (it can upsert), and
different, unlinkable pseudonyms at two subscribers (their secrets differ), so two ministries cannot
join their feeds on the identifier. Secrets come from files or the environment (publisher settings),
never from the repository.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

#: Shortest accepted secret; a short key could be brute-forced against a list of person ids.
MIN_SECRET_BYTES = 32


class MissingSecretError(KeyError):
    """A subscriber has no pseudonym secret configured."""

    def __str__(self) -> str:
        return (
            f"no pseudonym secret for subscriber {self.args[0]!r}: put one in <keys dir>/{self.args[0]}.key "
            "or in REGSOSEK_PUBLISHER_PSEUDONYM_KEYS"
        )


class Pseudonymiser:
    """Pseudonyms for one subscriber."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a pseudonym secret must have at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def _digest(self, domain: str, value: str) -> str:
        # The domain keeps a person id and a family key with equal text from sharing a pseudonym.
        mac = hmac.new(self._secret, f"{domain}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def person(self, person_id: str) -> str:
        """The subscriber's pseudonym of an internal person id."""
        return "prs-" + self._digest("person", person_id)

    def member(self, member_key: str) -> str:
        """The subscriber's pseudonym of a member slot (the Kafka key of person notifications)."""
        return "mem-" + self._digest("member", member_key)

    def family(self, family_key: str) -> str:
        """The subscriber's pseudonym of a family key."""
        return "fam-" + self._digest("family", family_key)


class KeyRing:
    """Pseudonymisers by subscriber id, built from secrets loaded by the publisher settings."""

    def __init__(self, secrets: Mapping[str, bytes]) -> None:
        self._by_subscriber = {sid: Pseudonymiser(secret) for sid, secret in secrets.items()}

    def for_subscriber(self, subscriber_id: str) -> Pseudonymiser:
        """The subscriber's pseudonymiser; MissingSecretError when none is configured."""
        try:
            return self._by_subscriber[subscriber_id]
        except KeyError:
            raise MissingSecretError(subscriber_id) from None

    def missing(self, subscriber_ids: list[str]) -> list[str]:
        """Which of `subscriber_ids` have no secret (checked at start-up, so the service fails fast)."""
        return [sid for sid in subscriber_ids if sid not in self._by_subscriber]
