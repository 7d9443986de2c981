"""Check a request body against the FamilySubmission contract, with a bounded cost and a bounded answer.

`check_submission` is synchronous and CPU-bound (a hostile 1 MiB body takes a few hundred milliseconds);
`SubmissionChecker` runs it in the threadpool so that one heavy body cannot stall the event loop and with
it every other request.
What it adds to the contract's own validation:

* duplicate keys in any JSON object are refused (`duplicate_key`): most parsers, pydantic's included,
  keep the last value silently, so two readers of the same bytes could see different submissions;
* a member list longer than the contract allows is refused from that parse, before the contract's
  validation (whose cost would grow with the list);
* at most `MAX_REPORTED_ERRORS` errors are returned, with the total count beside them;
* messages never repeat a submitted value (`contracts.errors.public_message`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from pydantic import ValidationError

from contracts.errors import public_message
from contracts.submission import FAMILY_SUBMISSION_ADAPTER, MAX_MEMBERS, FamilySubmissionV1

#: The 422 answer lists this many errors at most (and says how many there were in all).
MAX_REPORTED_ERRORS = 20

#: Bodies from this size on are checked one at a time. A real submission is 2-3 KB (99 members with every
#: item stay far below this); only abuse is this large, and one such check at a time leaves the CPU and
#: the interpreter lock to the event loop and the small requests.
LARGE_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Invalid:
    """Why a body is not a valid FamilySubmission: the first errors (loc/msg/type) and how many in all."""

    errors: list[dict[str, Any]]
    total: int


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


_NOT_JSON = object()


def _parse_unique(body: bytes) -> Any:
    """The parsed body; `_NOT_JSON` when it does not parse (the contract's parser then says why: its
    messages are the ones answered); raises `_DuplicateKey` when some object repeats a key."""
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        raise
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than Python parses
        return _NOT_JSON


DUPLICATE_KEY_ERROR: dict[str, Any] = {
    "loc": ["body"],
    "msg": "a JSON object repeats a key; every key may appear once per object",
    "type": "duplicate_key",
}

#: The contract's own error for an oversized member list (`FamilySubmissionV1._bounded`).
TOO_MANY_MEMBERS_ERROR: dict[str, Any] = {
    "loc": ["body", "members"],
    "msg": f"members should have at most {MAX_MEMBERS} items",
    "type": "too_long",
}


def field_errors(exc: ValidationError, limit: int = MAX_REPORTED_ERRORS) -> list[dict[str, Any]]:
    """The first `limit` pydantic errors as loc/msg/type, never echoing the input (it may hold a NIK)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = list(err["loc"])
        # The union discriminated on schema_version puts the version tag ("1") first; field names are
        # never all digits, so the tag is dropped and locations read like the document's own paths.
        if loc and isinstance(loc[0], str) and loc[0].isdigit():
            loc = loc[1:]
        problems.append({"loc": ["body", *loc], "msg": public_message(err), "type": err["type"]})
    return problems


def check_submission(body: bytes) -> FamilySubmissionV1 | Invalid:
    """The submission in `body`, or why it is refused. Never raises for any input bytes."""
    try:
        document = _parse_unique(body)
    except _DuplicateKey:
        return Invalid([DUPLICATE_KEY_ERROR], 1)
    members = document.get("members") if isinstance(document, dict) else None
    if isinstance(members, list) and len(members) > MAX_MEMBERS:
        # Answered from the parse already done: validating the document again would only find the same
        # refusal (the contract checks the length first too) after parsing the whole list a second time.
        return Invalid([TOO_MANY_MEMBERS_ERROR], 1)
    try:
        return FAMILY_SUBMISSION_ADAPTER.validate_json(body)
    except ValidationError as exc:
        return Invalid(field_errors(exc), exc.error_count())


class SubmissionChecker:
    """Runs `check_submission` off the event loop: small bodies in the shared threadpool, large ones in
    a threadpool lane of their own that holds one body at a time (so several large bodies queue rather
    than compete with every other request)."""

    def __init__(self) -> None:
        self._large: CapacityLimiter | None = None  # created on first use, inside the running event loop

    async def check(self, body: bytes) -> FamilySubmissionV1 | Invalid:
        """`check_submission(body)`, awaited in a worker thread."""
        if len(body) < LARGE_BODY_BYTES:
            return await anyio.to_thread.run_sync(check_submission, body)
        if self._large is None:
            self._large = CapacityLimiter(1)
        return await anyio.to_thread.run_sync(check_submission, body, limiter=self._large)
