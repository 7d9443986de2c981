"""Stable pseudonymous person ids.

A linked member gets the id of its master person: a keyed hash (HMAC-SHA256) of the master NIK, so the
id is the same for every submission, revision and replay, and the raw NIK is never used as an id.
An unlinked member gets a minted id: a keyed hash of its member key, recorded in the link store so a
later merge (issue 4, section 3) can map it to a master id. Both are deterministic for a given key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_ID_CHARS = 24  # 120 bits of the digest in base32: collisions are not a practical concern


class PersonIds:
    """Derives person ids with one secret key (from the settings; never logged)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the person id key must not be empty")
        self._key = key

    def _digest(self, domain: bytes, value: str) -> str:
        mac = hmac.new(self._key, domain + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()
        return base64.b32encode(mac).decode("ascii")[:_ID_CHARS].lower()

    def for_master(self, nik: str) -> str:
        """The id of a master person, from its NIK."""
        return "p-" + self._digest(b"master", nik)

    def mint(self, member_key: str) -> str:
        """A new id for a member not linked to the master, from its member key."""
        return "u-" + self._digest(b"minted", member_key)
