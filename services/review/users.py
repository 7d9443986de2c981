"""Reviewer accounts: a JSON file of user id -> role and scrypt password hash (stdlib only).

The file holds no clear-text password; `verify` compares in constant time. Managed by
`regsosek review users add`, read by the app at start-up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from contracts.review_decisions import ReviewerRole

# scrypt cost: ~16 MiB and a few tens of ms per check; enough against offline guessing of a stolen file.
_N, _R, _P = 2**14, 8, 1
USER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


class UserFileError(ValueError):
    """The users file or a new account is unusable; the message says why (never the password)."""


@dataclass(frozen=True)
class Reviewer:
    """A logged-in person: id and role."""

    user_id: str
    role: ReviewerRole


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)


class UserStore:
    """The accounts of one users file."""

    def __init__(self, entries: dict[str, dict[str, str]]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> UserStore:
        """Read `path` (an absent file is no accounts)."""
        if not path.exists():
            return cls({})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            users = data["users"]
            for entry in users.values():
                ReviewerRole(entry["role"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UserFileError(f"{path} is not a review users file: {exc.__class__.__name__}") from None
        return cls(users)

    def save(self, path: Path) -> None:
        """Write the file readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"users": self._entries}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    def add(self, user_id: str, password: str, role: ReviewerRole) -> None:
        """Add or replace an account."""
        if not USER_ID.match(user_id):
            raise UserFileError("user id: 2-64 characters, lower-case letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise UserFileError(f"password must have at least {MIN_PASSWORD} characters")
        salt = os.urandom(16)
        self._entries[user_id] = {
            "role": role.value,
            "salt": base64.b64encode(salt).decode(),
            "scrypt": base64.b64encode(_hash(password, salt)).decode(),
        }

    def verify(self, user_id: str, password: str) -> Reviewer | None:
        """The reviewer when the password is right, else None (unknown users cost the same time)."""
        entry = self._entries.get(user_id)
        salt = base64.b64decode(entry["salt"]) if entry else b"\0" * 16
        expected = base64.b64decode(entry["scrypt"]) if entry else b"\0" * 32
        ok = hmac.compare_digest(_hash(password, salt), expected)
        return Reviewer(user_id, ReviewerRole(entry["role"])) if entry and ok else None

    def __len__(self) -> int:
        return len(self._entries)
