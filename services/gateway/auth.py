"""Bearer-token authentication of enumerator teams, and the regions each team may write.

Each CAPI device of a team sends `Authorization: Bearer <token>`; the token identifies the team and
its grant: the region codes (prefixes of the 22-digit family key) whose families the team may submit.
Tokens are compared in constant time (a timing side channel must not reveal a token's prefix), and only
the team id ever reaches logs or Kafka headers, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Lengths of the BPS region codes a grant may name: province (2), regency (4), district (7) and
#: village (10) digits; each is a prefix of the family key.
REGION_CODE_LENGTHS = (2, 4, 7, 10)


@dataclass(frozen=True)
class TeamGrant:
    """A team and the regions it may write; `regions=None` (a legacy `"<token>": "<team>"` entry) is
    every region."""

    team: str
    regions: frozenset[str] | None = None

    def may_write(self, family_key: str) -> bool:
        """Whether the family (by its 22-digit key) lies in one of this team's regions."""
        if self.regions is None:
            return True
        return any(family_key[:n] in self.regions for n in REGION_CODE_LENGTHS)


def is_region_code(code: str) -> bool:
    """A province, regency, district or village code: 2, 4, 7 or 10 ASCII digits."""
    return len(code) in REGION_CODE_LENGTHS and code.isascii() and code.isdigit()


def grant_of(team: str, regions: Iterable[str] | None = None) -> TeamGrant:
    """A `TeamGrant`; `regions=None` grants every region."""
    return TeamGrant(team, None if regions is None else frozenset(regions))


class TeamTokens:
    """Looks up the team (and its regions) a bearer token belongs to."""

    def __init__(self, tokens: Mapping[str, str | TeamGrant]) -> None:
        # Keep digests, not the tokens: equal-length values make compare_digest truly constant time.
        self._grants = [
            (_digest(token), grant if isinstance(grant, TeamGrant) else TeamGrant(grant))
            for token, grant in tokens.items()
        ]

    def __len__(self) -> int:
        return len(self._grants)

    def grant_for(self, token: str | None) -> TeamGrant | None:
        """The grant of `token`, or None when it is missing or unknown."""
        if not token:
            return None
        presented = _digest(token)
        found: TeamGrant | None = None
        # Check every entry (no early exit), so the time taken does not depend on which one matched.
        for digest, grant in self._grants:
            if hmac.compare_digest(digest, presented):
                found = grant
        return found

    def team_for(self, token: str | None) -> str | None:
        """The team id of `token`, or None when it is missing or unknown."""
        grant = self.grant_for(token)
        return None if grant is None else grant.team

    def unrestricted(self) -> int:
        """How many tokens carry no regions (legacy entries that may write every region)."""
        return sum(1 for _, grant in self._grants if grant.regions is None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
