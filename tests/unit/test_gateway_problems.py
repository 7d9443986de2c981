"""RFC 9457 problem+json for every gateway error, and X-Request-ID: accepted when safe, generated
otherwise, echoed in the header, the problem body and the gateway's log records."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import build_app
from services.gateway.logs import EscapingFormatter, JsonFormatter
from services.gateway.request_id import RequestIdFilter, accept_or_generate, current_request_id
from services.gateway.settings import GatewaySettings
from tests.support.gateway import FakeSubmissionProducer, sample_body

TOKEN = "team-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(GatewaySettings(tokens={TOKEN: "team-3603-a"}), producer=FakeSubmissionProducer())
    with TestClient(app) as test_client:
        yield test_client


def test_a_safe_request_id_is_echoed_on_success_and_on_error(client: TestClient) -> None:
    ok = client.post("/v1/submissions", content=sample_body(), headers={**AUTH, "X-Request-ID": "capi-7f3a:01"})
    assert ok.status_code == 202
    assert ok.headers["X-Request-ID"] == "capi-7f3a:01"
    refused = client.post("/v1/submissions", content=b"{}", headers={"X-Request-ID": "capi-7f3a:02"})
    assert refused.status_code == 401
    assert refused.headers["X-Request-ID"] == "capi-7f3a:02"
    assert refused.json()["request_id"] == "capi-7f3a:02"


@pytest.mark.parametrize("sent", [None, "", "a b", "x" * 129, "a/b", "<script>", "id%0d%0aforged"])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_generated_one(client: TestClient, sent: str | None) -> None:
    # (CR/LF and non-ASCII cannot even be sent by the client library; accept_or_generate is tested below.)
    headers = {} if sent is None else {"X-Request-ID": sent}
    answer = client.get("/healthz", headers=headers)
    generated = answer.headers["X-Request-ID"]
    assert generated != sent and len(generated) == 32 and int(generated, 16) >= 0
    assert client.get("/healthz").headers["X-Request-ID"] != generated  # fresh per request


def test_accept_or_generate_keeps_exactly_the_safe_ids() -> None:
    assert accept_or_generate("A-z_0.9:x") == "A-z_0.9:x"
    assert accept_or_generate("x" * 128) == "x" * 128
    assert len(accept_or_generate("x" * 129)) == 32
    assert len(accept_or_generate("a\nb")) == 32
    assert current_request_id() == "-"  # outside a request


def test_unknown_path_and_wrong_method_are_problems_too(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here", headers={"X-Request-ID": "r1"})
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
        "request_id": "r1",
    }
    wrong = client.get("/v1/submissions", headers={"X-Request-ID": "r2"})
    assert wrong.status_code == 405
    assert wrong.json() == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "Method Not Allowed",
        "request_id": "r2",
    }
    assert wrong.headers["Allow"] == "POST"


def test_the_request_id_is_on_the_log_records_of_the_request(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("services.gateway")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        client.post("/v1/submissions", content=sample_body(3), headers={**AUTH, "X-Request-ID": "req-42"})
        client.post("/v1/submissions", content=b"{}", headers={"X-Request-ID": "req-43"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["request_id"], e["message"].split(" ")[1]) for e in entries] == [
        ("req-42", "stored"),
        ("req-43", "refused:"),
    ]


def test_an_unexpected_failure_is_a_500_problem_with_the_request_id() -> None:
    app = build_app(GatewaySettings(tokens={TOKEN: "team-3603-a"}), producer=FakeSubmissionProducer())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail 3603121505800002")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-ID": "r-500"})
    assert answer.status_code == 500
    assert answer.headers["X-Request-ID"] == "r-500"
    assert answer.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "unexpected error; the request id identifies it in the gateway's log",
        "request_id": "r-500",
    }


def test_text_log_lines_end_with_the_request_id_and_none_outside_a_request() -> None:
    formatter = EscapingFormatter("%(levelname)s %(message)s")
    inside = logging.LogRecord("services.gateway", logging.INFO, __file__, 1, "stored", None, None)
    inside.request_id = "req-9"
    outside = logging.LogRecord("services.gateway", logging.INFO, __file__, 1, "started", None, None)
    RequestIdFilter().filter(outside)
    assert formatter.format(inside) == "INFO stored request_id=req-9"
    assert formatter.format(outside) == "INFO started"
