"""The simulator's keep-alive HTTP client against a real local gateway (fake producer) and a rude server."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from tests.support.gateway import FakeSubmissionProducer, sample_body, serving
from tools.http_client import HttpProtocolError, KeepAlivePoster
from tools.simulator import ACCEPTED, GatewaySender

TOKEN = "poster-token-0123456789abcdef"


def test_statuses_and_connection_reuse_against_the_gateway() -> None:
    producer = FakeSubmissionProducer()
    app = build_app(GatewaySettings(tokens={TOKEN: "team-p"}), producer=producer)

    async def run(base_url: str) -> tuple[list[str], list[int]]:
        sender = GatewaySender(base_url, TOKEN, timeout_s=5)
        outcomes = [await sender.send(b"", sample_body(i)) for i in (1, 2, 3)]
        outcomes.append(await sender.send(b"", b"{not json"))
        await sender.close()
        wrong = KeepAlivePoster(base_url + "/v1/submissions", {"Authorization": "Bearer nope-nope-nope-nope"})
        statuses = [await wrong.post(sample_body(4)), await wrong.post(sample_body(5))]
        assert len(wrong._idle) == 1  # both requests went over one persistent connection
        await wrong.close()
        return outcomes, statuses

    with serving(app) as base_url:
        outcomes, statuses = asyncio.run(run(base_url))
    assert outcomes == [ACCEPTED, ACCEPTED, ACCEPTED, "422"]
    assert statuses == [401, 401]
    assert [r.value for r in producer.records] == [sample_body(i) for i in (1, 2, 3)]


def test_a_keep_alive_connection_closed_by_the_server_is_retried_once() -> None:
    served: list[int] = []
    hung_up = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers one request per connection, then hangs up without saying so (like an idle timeout).
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
        await reader.readexactly(length)
        served.append(length)
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    async def run() -> list[int]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        poster = KeepAlivePoster(f"http://127.0.0.1:{port}/v1/submissions", {})
        statuses = [await poster.post(b"abc")]
        await asyncio.wait_for(hung_up.wait(), 5)  # the idle connection is closed before the next post
        statuses.append(await poster.post(b"defg"))
        await poster.close()
        server.close()
        await server.wait_closed()
        return statuses

    assert asyncio.run(run()) == [202, 202]
    assert served == [3, 4]


def test_garbage_answers_and_bad_urls_are_errors() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(HttpProtocolError):
            await KeepAlivePoster(f"http://127.0.0.1:{port}/x", {}).post(b"{}")
        server.close()
        await server.wait_closed()

    asyncio.run(run())
    with pytest.raises(ValueError, match="not an http"):
        KeepAlivePoster("ftp://example.org/x", {})


def test_unreachable_gateway_is_a_connection_error_outcome() -> None:
    from tools.broker import free_port

    async def run() -> str:
        sender = GatewaySender(f"http://127.0.0.1:{free_port()}", TOKEN, timeout_s=2)
        try:
            return await sender.send(b"", sample_body(1))
        finally:
            await sender.close()

    assert asyncio.run(run()) == "connection_error"
