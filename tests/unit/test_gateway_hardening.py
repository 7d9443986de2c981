"""The gateway against hostile bodies: 415 for a wrong media type, 422 for duplicate keys and a wrong
member_count, a bounded 422 for a huge error list, validation that does not stall other requests, no echo
of submitted values, and log lines that a CR/LF or ANSI escape cannot forge."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from contracts.submission import FAMILY_SUBMISSION_ADAPTER, MAX_MEMBERS
from services.gateway.app import UNSUPPORTED_MEDIA_TYPE, build_app
from services.gateway.logs import EscapingFormatter, JsonFormatter, escape_controls
from services.gateway.settings import GatewaySettings
from services.gateway.validation import (
    DUPLICATE_KEY_ERROR,
    MAX_REPORTED_ERRORS,
    TOO_MANY_MEMBERS_ERROR,
    Invalid,
    check_submission,
    field_errors,
)
from tests.support.gateway import FakeSubmissionProducer, sample_body, sample_submission
from tests.unit.gateway_support import AUTH, BEARER, TOKEN, client, producer

__all__ = ["client", "producer"]  # the fixtures


def _invalid(response: httpx.Response) -> dict[str, object]:
    """The 422 problem's `errors` and `error_count`, after checking it is an RFC 9457 problem."""
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {k: body.pop(k) for k in ("type", "title", "status", "request_id")} == {
        "type": "urn:regsosek:problem:invalid-submission",
        "title": "Not a valid FamilySubmission v1",
        "status": 422,
        "request_id": response.headers["X-Request-ID"],
    }
    assert body.pop("detail").startswith(f"{body['error_count']} error(s) in the submission")
    return body


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
        "application/json; boundary=x",
        "multipart/form-data",
        "application/json-patch+json",
    ],
)
def test_a_body_not_declared_as_utf8_json_gets_415_and_is_not_produced(
    client: TestClient, producer: FakeSubmissionProducer, content_type: str | None
) -> None:
    headers = BEARER if content_type is None else {**BEARER, "Content-Type": content_type}
    response = client.post("/v1/submissions", content=sample_body(), headers=headers)
    assert response.status_code == 415
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:regsosek:problem:unsupported-media-type",
        "title": "Unsupported media type",
        "status": 415,
        "detail": UNSUPPORTED_MEDIA_TYPE,
        "request_id": response.headers["X-Request-ID"],
    }
    assert producer.records == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/json; charset=utf-8", 'application/json;charset="UTF-8"'],
)
def test_json_with_or_without_a_utf8_charset_is_accepted(
    client: TestClient, producer: FakeSubmissionProducer, content_type: str
) -> None:
    response = client.post("/v1/submissions", content=sample_body(), headers={**BEARER, "Content-Type": content_type})
    assert response.status_code == 202, response.text
    assert len(producer.records) == 1


def test_415_comes_after_401_and_before_the_body_is_read(client: TestClient) -> None:
    no_token = client.post("/v1/submissions", content=sample_body(), headers={"Content-Type": "text/plain"})
    assert no_token.status_code == 401
    # A body over the size limit with the wrong media type: refused for its type, never read.
    oversized = client.post("/v1/submissions", content=b"x" * 5000, headers={**BEARER, "Content-Type": "text/plain"})
    assert oversized.status_code == 415


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"revision": 1,', b'"revision": 1, "revision": 2,'),  # top level; each value alone would be valid
        (b'"serial": 2,', b'"serial": 2, "serial": 2,'),  # inside a member
        (b'"rt": "002",', b'"rt": "002", "rt": "002",'),
    ],  # same value twice is still refused
    ids=["top-level", "member", "same-value"],
)
def test_duplicate_keys_get_422_and_are_not_produced(
    client: TestClient, producer: FakeSubmissionProducer, old: bytes, new: bytes
) -> None:
    body = sample_body().replace(old, new, 1)
    assert body != sample_body()
    response = client.post("/v1/submissions", content=body, headers=AUTH)
    assert _invalid(response) == {"errors": [DUPLICATE_KEY_ERROR], "error_count": 1}
    assert producer.records == []


@pytest.mark.parametrize("member_count", [0, 1, 3])
def test_member_count_must_equal_the_living_members(
    client: TestClient, producer: FakeSubmissionProducer, member_count: int
) -> None:
    response = client.post("/v1/submissions", content=sample_body(member_count=member_count), headers=AUTH)
    assert _invalid(response) == {
        "errors": [
            {
                "loc": ["body", "members"],
                "type": "member_count_mismatch",
                "msg": "member_count must equal the number of members living in the family (presence 1 or 4)",
            }
        ],
        "error_count": 1,
    }
    assert producer.records == []


def test_a_member_who_died_is_listed_but_not_counted(client: TestClient, producer: FakeSubmissionProducer) -> None:
    doc = sample_submission()
    doc["members"][1]["presence"] = 2
    doc["member_count"] = 1
    assert client.post("/v1/submissions", content=json.dumps(doc), headers=AUTH).status_code == 202
    assert len(producer.records) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schema_version", "9<script>"),
        ("submission_id", "S-1\r\n2026-12-06 INFO forged"),
        ("enumerator_code", "E36\x1b[31m03"),
    ],
)
def test_errors_never_echo_a_submitted_value(client: TestClient, field: str, value: str) -> None:
    response = client.post("/v1/submissions", content=json.dumps(sample_submission(**{field: value})), headers=AUTH)
    body = _invalid(response)
    expected = (
        {"loc": ["body"], "msg": "schema_version must be one of: '1'", "type": "union_tag_invalid"}
        if field == "schema_version"
        else {
            "loc": ["body", field],
            "msg": "String should match pattern '^[A-Za-z0-9._:-]+$'",
            "type": "string_pattern_mismatch",
        }
    )
    assert body == {"errors": [expected], "error_count": 1}
    assert value not in response.text and json.dumps(value) not in response.text


def test_the_error_list_is_cut_at_the_first_errors_with_the_total_count(producer: FakeSubmissionProducer) -> None:
    doc = sample_submission()
    bad = [{"serial": "x", "name": "A", "presence": 9, "relationship": 1} for _ in range(98)]
    doc["members"] = [doc["members"][0], *bad]
    app = build_app(GatewaySettings(tokens={TOKEN: "team-3603-a"}), producer=producer)
    with TestClient(app) as client:
        response = client.post("/v1/submissions", content=json.dumps(doc), headers=AUTH)
    body = _invalid(response)
    assert body["error_count"] == 2 * 98  # serial and presence of every bad member
    assert len(body["errors"]) == MAX_REPORTED_ERRORS  # type: ignore[arg-type]
    assert body["errors"][:2] == [  # type: ignore[index]
        {
            "loc": ["body", "members", 1, "serial"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        },
        {"loc": ["body", "members", 1, "presence"], "msg": "Input should be 1, 2, 3, 4 or 5", "type": "enum"},
    ]
    assert producer.records == []


def _huge_bad_body(members: int = 300_000) -> bytes:
    doc = sample_submission()
    doc["members"] = [{} for _ in range(members)]
    return json.dumps(doc, separators=(",", ":")).encode()


def test_300000_bad_members_get_a_small_422_while_a_concurrent_valid_request_is_served_first(
    producer: FakeSubmissionProducer,
) -> None:
    bad = _huge_bad_body()
    assert 800_000 < len(bad) < 1_048_576  # within the default body limit: it reaches validation
    app = build_app(GatewaySettings(tokens={TOKEN: "team-3603-a"}), producer=producer)
    finished: list[str] = []

    async def run() -> tuple[httpx.Response, httpx.Response]:
        await producer.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:

            async def post(name: str, body: bytes) -> httpx.Response:
                response = await client.post("/v1/submissions", content=body, headers=AUTH)
                finished.append(name)
                return response

            # The bad request starts first; validating it runs in the threadpool, so the event loop
            # keeps serving and the small valid request finishes before it.
            return await asyncio.gather(post("bad", bad), post("valid", sample_body(7)))

    bad_response, valid_response = asyncio.run(run())
    assert valid_response.status_code == 202
    assert _invalid(bad_response) == {
        "errors": [{"loc": ["body", "members"], "msg": "members should have at most 99 items", "type": "too_long"}],
        "error_count": 1,
    }
    assert len(bad_response.content) < 500  # was 26.3 MB: one error per missing field of every member
    assert finished == ["valid", "bad"]
    assert [r.value for r in producer.records] == [sample_body(7)]


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("services.gateway", logging.INFO, __file__, 1, message, args, None)


def test_log_lines_escape_crlf_and_ansi_escapes() -> None:
    hostile = "S-1\r\n2026-12-06 INFO services.gateway: forged\x1b[31m red\u2028\x85"
    line = EscapingFormatter("%(levelname)s %(name)s: %(message)s").format(
        _record("submission stored team=%s submission_id=%s", "team-a", hostile)
    )
    assert line == (
        "INFO services.gateway: submission stored team=team-a "
        "submission_id=S-1\\r\\n2026-12-06 INFO services.gateway: forged\\x1b[31m red\\u2028\\x85"
    )
    assert escape_controls("plain text; no controls") == "plain text; no controls"


def test_json_log_lines_are_one_object_per_line_with_the_message_intact() -> None:
    hostile = "S-1\r\nforged\x1b[31m"
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        record = _record("stored submission_id=%s", hostile)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    entry = json.loads(line)
    assert entry["message"] == f"stored submission_id={hostile}"
    assert (entry["level"], entry["logger"]) == ("INFO", "services.gateway")
    assert entry["exception"].endswith("ValueError: bad\nthing")


def test_the_gateways_early_member_list_refusal_is_the_contracts_own() -> None:
    body = _huge_bad_body(members=MAX_MEMBERS + 1)
    with pytest.raises(ValidationError) as info:
        FAMILY_SUBMISSION_ADAPTER.validate_json(body)  # what the linker would answer for the same bytes
    assert field_errors(info.value) == [TOO_MANY_MEMBERS_ERROR]
    assert check_submission(body) == Invalid([TOO_MANY_MEMBERS_ERROR], 1)


def test_openapi_documents_415_and_the_bounded_422(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    responses = doc["paths"]["/v1/submissions"]["post"]["responses"]
    assert {"202", "401", "413", "415", "422", "503"} <= set(responses)
    assert set(responses["422"]["content"]) == {"application/problem+json"}
    problem = doc["components"]["schemas"]["ValidationProblem"]
    assert problem["required"] == ["type", "title", "status", "detail", "request_id", "errors", "error_count"]
    assert problem["properties"]["errors"]["maxItems"] == MAX_REPORTED_ERRORS
