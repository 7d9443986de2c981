"""Check a request body against the FamilySubmission contract, with a bounded cost and a bounded answer.

`check_submission` is synchronous and CPU-bound (a 1 MiB body takes tens of milliseconds); the app runs
it in the threadpool so that one heavy body cannot stall the event loop and every other request.
What it adds to the contract's own validation:

* duplicate keys in any JSON object are refused (`duplicate_key`): most parsers, pydantic's included,
  keep the last value silently, so two readers of the same bytes could see different submissions;
* at most `MAX_REPORTED_ERRORS` errors are returned, with the total count beside them;
* messages never repeat a submitted value (`contracts.errors.public_message`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.errors import public_message
from contracts.submission import FAMILY_SUBMISSION_ADAPTER, FamilySubmissionV1

#: The 422 answer lists this many errors at most (and says how many there were in all).
MAX_REPORTED_ERRORS = 20


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


def has_duplicate_keys(body: bytes) -> bool:
    """True when some JSON object in `body` repeats a key. A body that is not JSON gives False: the
    contract's parser then reports why it is not (the two parsers' messages differ; pydantic's is used)."""
    try:
        json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        return True
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than Python parses
        return False
    return False


DUPLICATE_KEY_ERROR: dict[str, Any] = {
    "loc": ["body"],
    "msg": "a JSON object repeats a key; every key may appear once per object",
    "type": "duplicate_key",
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
    if has_duplicate_keys(body):
        return Invalid([DUPLICATE_KEY_ERROR], 1)
    try:
        return FAMILY_SUBMISSION_ADAPTER.validate_json(body)
    except ValidationError as exc:
        return Invalid(field_errors(exc), exc.error_count())
