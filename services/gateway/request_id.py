"""X-Request-ID: accepted from the client when safe, generated otherwise, echoed and logged.

A request id a client sends is kept only if it is 1-128 characters of `[A-Za-z0-9._:-]` (the contract's
safe identifier set), so it can go into a log line and a header unchanged; otherwise the gateway makes a
fresh one (32 hex digits). The id is answered in the `X-Request-ID` header, in every problem+json body
(`request_id`), and added to each log record written while the request is handled (`RequestIdFilter`).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_current: ContextVar[str] = ContextVar("regsosek_request_id", default="-")


def current_request_id() -> str:
    """The id of the request being handled ("-" outside a request)."""
    return _current.get()


def accept_or_generate(value: str | None) -> str:
    """`value` when it is a safe id, else a fresh random one."""
    if value is not None and _SAFE.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Pure ASGI middleware (no response buffering): sets the id for the request and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = accept_or_generate(sent.decode("latin-1") if sent is not None else None)
        token = _current.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Reset only after a normal end: on an exception the id must stay visible to the 500 handler,
        # which Starlette runs outside this middleware (the request's task context ends right after).
        _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record (`-` outside a request) for the formatters in logs.py."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get()
        return True
