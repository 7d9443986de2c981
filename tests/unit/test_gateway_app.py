"""The gateway's HTTP behaviour with a fake producer port: status codes, bodies, what gets produced, logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.gateway.app import TEAM_HEADER, build_app
from services.gateway.producer import BrokerUnavailable, MessageTooLarge
from services.gateway.settings import GatewaySettings
from tests.support.gateway import FakeSubmissionProducer, family_key_of, sample_body, sample_submission
from tests.unit.gateway_support import AUTH, TOKEN, client, producer

__all__ = ["client", "producer"]  # the fixtures


def test_valid_submission_is_produced_verbatim_under_the_family_key(
    client: TestClient, producer: FakeSubmissionProducer
) -> None:
    body = sample_body(5)
    response = client.post("/v1/submissions", content=body, headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {
        "submission_id": "S-3603-0000005-r1",
        "family_key": "3603010001000100001005",
        "topic": "regsosek.submissions.v1",
        "partition": 0,
        "offset": 0,
    }
    assert len(producer.records) == 1
    record = producer.records[0]
    assert record.value == body
    assert record.key == b"3603010001000100001005"
    assert record.headers == [(TEAM_HEADER, b"team-3603-a")]


def test_lifespan_starts_and_stops_the_producer(producer: FakeSubmissionProducer) -> None:
    app = build_app(GatewaySettings(tokens={TOKEN: "t"}), producer=producer)
    with TestClient(app):
        assert producer.started and not producer.stopped
    assert producer.stopped


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown", "wrong-scheme", "empty"],
)
def test_requests_without_a_known_token_get_401_and_nothing_is_produced(
    client: TestClient, producer: FakeSubmissionProducer, headers: dict[str, str]
) -> None:
    response = client.post("/v1/submissions", content=sample_body(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:regsosek:problem:unauthenticated",
        "title": "Missing or unknown bearer token",
        "status": 401,
        "detail": "missing or unknown bearer token",
        "request_id": response.headers["X-Request-ID"],
    }
    assert producer.records == []


def _bad_bodies() -> list[tuple[str, bytes, list[object], str]]:
    future = sample_submission()
    future["members"][0]["birth_date"] = {"day": 1, "month": 1, "year": 2999}
    bad_nik = sample_submission()
    bad_nik["members"][0]["nik"] = "3603120000000000"
    dup = sample_submission()
    dup["members"][1]["serial"] = 1
    no_members = sample_submission(members=[])
    wrong_type = sample_submission(revision="first")
    missing = sample_submission()
    del missing["head_name"]
    bad_key = sample_submission()
    bad_key["family_key"]["sls"] = "1"
    return [
        ("not-json", b"{not json", ["body"], "json_invalid"),
        ("invalid-utf8", b'{"schema_version": "\xff"}', ["body"], "json_invalid"),
        ("empty", b"", ["body"], "json_invalid"),
        ("array", b"[1, 2]", ["body"], "dict_type"),
        ("unknown-version", json.dumps(sample_submission(schema_version="9")).encode(), ["body"], "union_tag_invalid"),
        ("wrong-type", json.dumps(wrong_type).encode(), ["body", "revision"], "int_parsing"),
        ("missing-field", json.dumps(missing).encode(), ["body", "head_name"], "missing"),
        ("no-members", json.dumps(no_members).encode(), ["body", "members"], "too_short"),
        (
            "future-birth-date",
            json.dumps(future).encode(),
            ["body", "members", 0, "birth_date", "year"],
            "less_than_equal",
        ),
        ("invalid-nik", json.dumps(bad_nik).encode(), ["body", "members", 0, "nik"], ""),
        ("duplicate-serials", json.dumps(dup).encode(), ["body", "members"], "duplicate_member_serial"),
        ("bad-family-key", json.dumps(bad_key).encode(), ["body", "family_key", "sls"], "string_pattern_mismatch"),
    ]


@pytest.mark.parametrize(("case", "body", "loc", "error_type"), _bad_bodies(), ids=[c[0] for c in _bad_bodies()])
def test_invalid_bodies_get_422_with_field_errors_and_are_not_produced(
    client: TestClient,
    producer: FakeSubmissionProducer,
    case: str,
    body: bytes,
    loc: list[object],
    error_type: str,
) -> None:
    response = client.post("/v1/submissions", content=body, headers=AUTH)
    assert response.status_code == 422, case
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["status"]) == ("urn:regsosek:problem:invalid-submission", 422)
    errors = problem["errors"]
    assert problem["error_count"] == len(errors)
    assert errors, case
    assert all(set(e) == {"loc", "msg", "type"} and e["msg"] for e in errors)
    matching = [e for e in errors if e["loc"] == loc]
    assert matching, f"{case}: no error at {loc}, got {[e['loc'] for e in errors]}"
    if error_type:
        assert matching[0]["type"] == error_type
    # The response never echoes personal data back (it may be logged by proxies).
    assert "3603120000000000" not in response.text and "Ahmad" not in response.text
    assert producer.records == []


def test_body_over_the_declared_limit_gets_413(client: TestClient, producer: FakeSubmissionProducer) -> None:
    response = client.post("/v1/submissions", content=b"x" * 5000, headers=AUTH)
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]
    assert producer.records == []


def test_chunked_body_is_cut_off_at_the_limit(client: TestClient, producer: FakeSubmissionProducer) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(100):  # 100 KiB offered, no Content-Length
            sent.append(1)
            yield b"y" * 1024

    response = client.post("/v1/submissions", content=chunks(), headers=AUTH)
    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert producer.records == []


def test_broker_unavailable_gives_503_never_202(client: TestClient, producer: FakeSubmissionProducer) -> None:
    producer.fail_with = BrokerUnavailable
    response = client.post("/v1/submissions", content=sample_body(), headers=AUTH)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "did not confirm" in response.json()["detail"]


def test_broker_refusing_the_size_gives_413(client: TestClient, producer: FakeSubmissionProducer) -> None:
    producer.fail_with = MessageTooLarge
    response = client.post("/v1/submissions", content=sample_body(), headers=AUTH)
    assert response.status_code == 413


def test_health_and_readiness(client: TestClient, producer: FakeSubmissionProducer) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    producer.is_ready = False
    assert client.get("/readyz").status_code == 503


def test_openapi_documents_the_contract_and_bearer_auth(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/v1/submissions"]["post"]
    assert set(post["responses"]) >= {"202", "401", "413", "422", "503"}
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert "#/components/schemas/" in json.dumps(body_schema)
    schemas = doc["components"]["schemas"]
    assert {"FamilyKey", "Member", "SubmissionAccepted"} <= set(schemas)
    # Every reference in the document resolves.
    refs = {r.split("/")[-1] for r in _refs(doc)}
    assert refs <= set(schemas), refs - set(schemas)
    assert any(s.get("scheme") == "bearer" for s in doc["components"]["securitySchemes"].values())


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_logs_name_the_team_but_no_personal_data(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    doc = sample_submission()
    bad = sample_submission()
    bad["members"][0]["nik"] = "3603120000000000"
    with caplog.at_level(logging.INFO, logger="services.gateway"):
        assert client.post("/v1/submissions", content=json.dumps(doc), headers=AUTH).status_code == 202
        assert client.post("/v1/submissions", content=json.dumps(bad), headers=AUTH).status_code == 422
    text = caplog.text
    assert "team=team-3603-a" in text and "submission_id=S-3603-0000001-r1" in text
    for secret in ("3603121505800002", "3603120000000000", "3603121705150003", "Ahmad", "Siti", TOKEN):
        assert secret not in text
    assert family_key_of(doc) == "3603010001000100001001"


def test_metrics_count_answers_by_status_on_the_injected_registry(producer: FakeSubmissionProducer) -> None:
    registry = CollectorRegistry()
    app = build_app(
        GatewaySettings(tokens={TOKEN: "team-m"}, max_body_bytes=4096), producer=producer, registry=registry
    )
    with TestClient(app) as client:
        for serial in (1, 2, 3):
            assert client.post("/v1/submissions", content=sample_body(serial), headers=AUTH).status_code == 202
        assert client.post("/v1/submissions", content=b"{", headers=AUTH).status_code == 422
        assert client.post("/v1/submissions", content=sample_body()).status_code == 401
        assert client.post("/v1/submissions", content=b"z" * 5000, headers=AUTH).status_code == 413
        exposition = client.get("/metrics")
    route = "/v1/submissions"

    def count(code: str) -> float | None:
        return registry.get_sample_value("regsosek_gateway_requests_total", {"route": route, "code": code})

    assert [count(c) for c in ("202", "422", "401", "413", "503")] == [3.0, 1.0, 1.0, 1.0, 0.0]
    assert exposition.status_code == 200
    assert 'regsosek_gateway_requests_total{code="202",route="/v1/submissions"} 3.0' in exposition.text
    assert "/metrics" not in client.app.openapi()["paths"]  # type: ignore[attr-defined]
