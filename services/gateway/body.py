"""Read a request body without ever holding more than the limit in memory."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(ValueError):
    """The body is (or declares to be) larger than the gateway accepts."""


async def read_bounded_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as the declared or received size passes `limit` bytes.

    The declared Content-Length is checked first (refusing before reading anything); chunked bodies,
    and clients that under-declare, are cut off while streaming.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {int(declared)} bytes is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(f"body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
