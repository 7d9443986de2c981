"""A lean HTTP/1.1 keep-alive client for the simulator's POSTs to the gateway.

The simulator plays thousands of devices from one Python process; with a general-purpose client
(httpx) the load generator itself used more CPU per request than the gateway it measures (about 3 ms
against 1 ms here), so its own overhead capped the offered rate. This client does only what the
simulator needs: POST a body over persistent plain-HTTP or HTTPS connections and read the status.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit


class HttpProtocolError(ValueError):
    """The server's answer was not the HTTP/1.1 this client understands."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False

    def close(self) -> None:
        self.writer.close()


class KeepAlivePoster:
    """POSTs bodies to one URL over a pool of persistent connections; returns the status code."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        host_header = parts.netloc
        lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = "\r\n".join(lines).encode("latin-1")
        self._idle: list[_Connection] = []

    async def post(self, body: bytes) -> int:
        """Send one POST; a reused connection the server had closed is retried once on a fresh one."""
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            return await self._post_on(conn, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not conn.reused:
                raise
        # The server closes idle keep-alive connections; it had not read this request at all then.
        return await self._post_on(await self._connect(), body)

    async def _post_on(self, conn: _Connection, body: bytes) -> int:
        try:
            status, keep = await self._exchange(conn, body)
        except BaseException:
            conn.close()
            raise
        if keep:
            conn.reused = True
            self._idle.append(conn)
        else:
            conn.close()
        return status

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _connect(self) -> _Connection:
        context = ssl.create_default_context() if self._tls else None
        reader, writer = await asyncio.open_connection(self._host, self._port, ssl=context)
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, body: bytes) -> tuple[int, bool]:
        conn.writer.write(self._head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await conn.writer.drain()
        head = await conn.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise HttpProtocolError(f"unexpected status line {status_line[:80]!r}")
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            await conn.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            await _skip_chunked(conn.reader)
        else:
            raise HttpProtocolError("response has neither Content-Length nor chunked encoding")
        keep = headers.get("connection") != "close" and version == "HTTP/1.1"
        return int(rest[:3]), keep


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)  # chunk data and its CRLF
        if size == 0:
            return
