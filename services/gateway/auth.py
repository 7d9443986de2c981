"""Bearer-token authentication of enumerator teams.

Each CAPI device of a team sends `Authorization: Bearer <token>`; the token identifies the team. Tokens
are compared in constant time (a timing side channel must not reveal a token's prefix), and only the team
id ever reaches logs or Kafka headers, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


class TeamTokens:
    """Looks up the team a bearer token belongs to."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        # Keep digests, not the tokens: equal-length values make compare_digest truly constant time.
        self._teams = [(_digest(token), team) for token, team in tokens.items()]

    def __len__(self) -> int:
        return len(self._teams)

    def team_for(self, token: str | None) -> str | None:
        """The team id of `token`, or None when it is missing or unknown."""
        if not token:
            return None
        presented = _digest(token)
        found: str | None = None
        # Check every entry (no early exit), so the time taken does not depend on which one matched.
        for digest, team in self._teams:
            if hmac.compare_digest(digest, presented):
                found = team
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
