"""The gateway's error answers: RFC 9457 problem details (`application/problem+json`).

Every 4xx/5xx body carries `type`, `title`, `status` and `detail`, plus our extension members:
`request_id` (the X-Request-ID of the exchange), and on a 422 `errors` (the first field errors, bounded)
and `error_count` (all of them). `type` is a stable URN per kind of problem, so a client branches on it
rather than on the wording of `detail`; nothing a client sent is echoed (the body may hold a NIK).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.request_id import current_request_id
from services.gateway.validation import MAX_REPORTED_ERRORS

PROBLEM_JSON = "application/problem+json"

#: `type` of each problem the gateway answers with; anything else (404, 405, ...) is `about:blank`.
PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: ("urn:regsosek:problem:bad-request", "Bad request"),
    401: ("urn:regsosek:problem:unauthenticated", "Missing or unknown bearer token"),
    403: ("urn:regsosek:problem:region-not-allowed", "Family outside the team's regions"),
    413: ("urn:regsosek:problem:body-too-large", "Request body too large"),
    415: ("urn:regsosek:problem:unsupported-media-type", "Unsupported media type"),
    422: ("urn:regsosek:problem:invalid-submission", "Not a valid FamilySubmission v1"),
    503: ("urn:regsosek:problem:broker-unavailable", "Broker not available"),
}


class FieldError(BaseModel):
    """One reason a body is not a valid FamilySubmission: where (`loc`) and what (`msg`, `type`)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object (401, 403, 413, 415, 503 and unexpected errors)."""

    type: str = Field(description="URN naming the kind of problem; `about:blank` for plain HTTP errors")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong with this request (never echoes what was sent)")
    request_id: str = Field(description="the X-Request-ID of the exchange, also in the response header")


class ValidationProblem(Problem):
    """422: the first errors (at most `MAX_REPORTED_ERRORS`) and how many there were in all."""

    errors: list[FieldError] = Field(max_length=MAX_REPORTED_ERRORS)
    error_count: int = Field(ge=1, description="all errors found; `errors` lists the first of them")


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response of `status` with `detail` and any extension members in `extra`."""
    type_, title = PROBLEM_TYPES.get(status, ("about:blank", HTTPStatus(status).phrase))
    body = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def validation_problem(errors: list[dict[str, Any]], total: int) -> JSONResponse:
    """The 422 answer: `errors` are the first field errors, `total` all of them."""
    shown = len(errors)
    detail = f"{total} error(s) in the submission" + (f"; the first {shown} are listed" if shown < total else "")
    return problem(422, detail, errors=errors, error_count=total)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer FastAPI's own errors (unknown path, wrong method, unexpected failure) as problem+json too."""

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)

    async def request_error(_: Request, exc: Exception) -> JSONResponse:
        # Locations and types only: pydantic's messages may quote the input.
        assert isinstance(exc, RequestValidationError)
        found = list(exc.errors())
        errors = [{"loc": list(e["loc"]), "msg": "invalid", "type": e["type"]} for e in found[:MAX_REPORTED_ERRORS]]
        return problem(422, "the request is not valid", errors=errors, error_count=len(found))

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Runs outside RequestIdMiddleware (in Starlette's error middleware): add the header here.
        request_id = current_request_id()
        return problem(
            500, "unexpected error; the request id identifies it in the gateway's log", {"X-Request-ID": request_id}
        )

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_error)
    app.add_exception_handler(Exception, unexpected)
