"""Request body checks before parsing: the declared media type, and a size bound on what is read."""

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


def is_json_utf8(content_type: str | None) -> bool:
    """True for `application/json`, alone or with `charset=utf-8` (any case, quoted or not), and nothing else.

    The contract is UTF-8 JSON; a body declared as anything else (form data, text, another charset) is
    refused with 415 before it is read, rather than parsed as if it were JSON.
    """
    if content_type is None:
        return False
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != "application/json":
        return False
    for param in params:
        if not param:  # "application/json;" and similar: an empty parameter
            continue
        name, sep, value = param.partition("=")
        if not sep or name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            return False
    return True
