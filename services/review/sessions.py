"""Login sessions and CSRF tokens (in memory: a restart logs reviewers out, it loses no decision).

A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie. Every POST must carry the
session's CSRF token in the form (`csrf`); the login form carries a token bound to a pre-login cookie.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from services.review.users import Reviewer

SESSION_COOKIE = "regsosek_review_session"
LOGIN_COOKIE = "regsosek_review_login"


@dataclass
class Session:
    """One logged-in reviewer."""

    reviewer: Reviewer
    csrf: str
    expires: float
    #: The decision id this reviewer may undo (their last one), if any.
    last_decision_id: str | None = field(default=None)


class Sessions:
    """Session ids -> sessions, with expiry."""

    def __init__(self, ttl_s: int) -> None:
        self._ttl = ttl_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, reviewer: Reviewer) -> tuple[str, Session]:
        """A new session id and session."""
        sid = secrets.token_urlsafe(32)
        session = Session(reviewer, secrets.token_urlsafe(32), time.monotonic() + self._ttl)
        with self._lock:
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session for a cookie value."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires < time.monotonic():
                del self._sessions[sid]
                return None
        return session

    def drop(self, sid: str | None) -> None:
        """Log out."""
        with self._lock:
            self._sessions.pop(sid or "", None)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; a missing one never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
