"""The ingest gateway against the REAL broker: stored byte-for-byte under the family key, refusals store
nothing, 503 (never 202) when the broker is unreachable, and `python -m tools simulate` delivers every message."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from kafka.partitioner import murmur2
from typer.testing import CliRunner

from contracts.topics import TopicSpec
from services.gateway.app import TEAM_HEADER, build_app
from services.gateway.settings import GatewaySettings
from services.gateway.validation import DUPLICATE_KEY_ERROR
from services.kafka import topics
from services.kafka.io import read_topic
from services.kafka.record import KafkaRecord
from tests.support.gateway import family_key_of, sample_body, sample_submission, serving
from tools.broker import free_port

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker

pytestmark = pytest.mark.broker

TOKEN = "integration-token-team-3603-b"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
PARTITIONS = 4


def _new_topic(bootstrap: str) -> str:
    # A topic per test module: other suites read `regsosek.submissions.v1` and must not see these records.
    name = f"test.gateway.{uuid.uuid4().hex[:10]}"
    spec = TopicSpec(
        name,
        PARTITIONS,
        "delete",
        -1,
        key="family key",
        value_schema="FamilySubmission v1",
        description="gateway integration test",
    )
    report = topics.provision(bootstrap, [spec])
    assert report.created == [name]
    return name


@pytest.fixture(scope="module")
def topic(kafka_broker: RunningBroker) -> str:
    return _new_topic(kafka_broker.bootstrap)


@pytest.fixture(scope="module")
def client(kafka_broker: RunningBroker, topic: str) -> Iterator[TestClient]:
    settings = GatewaySettings(
        bootstrap=kafka_broker.bootstrap, topic=topic, tokens={TOKEN: "team-3603-b"}, max_body_bytes=8192
    )
    with TestClient(build_app(settings)) as test_client:
        yield test_client


def _read(bootstrap: str, topic: str) -> list[KafkaRecord]:
    return read_topic(bootstrap, topic, timeout_s=20)


def _partition_of(key: bytes) -> int:
    # The catalogue's rule: Kafka's murmur2 of the family key's district (its first 7 digits).
    return int(murmur2(key[:7]) & 0x7FFFFFFF) % PARTITIONS


def test_accepted_submissions_are_in_the_topic_byte_for_byte_with_the_family_key(
    client: TestClient, kafka_broker: RunningBroker, topic: str
) -> None:
    before = len(_read(kafka_broker.bootstrap, topic))
    bodies = [sample_body(serial) for serial in (11, 12, 13, 14, 15)]
    # Whitespace and key order are kept exactly as the device sent them.
    bodies.append(json.dumps(sample_submission(16), indent=2, sort_keys=True).encode())
    answers = []
    for body in bodies:
        response = client.post("/v1/submissions", content=body, headers=AUTH)
        assert response.status_code == 202, response.text
        answers.append(response.json())
    records = {(r.partition, r.offset): r for r in _read(kafka_broker.bootstrap, topic)}
    assert len(records) == before + len(bodies)
    for body, answer in zip(bodies, answers, strict=True):
        record = records[(answer["partition"], answer["offset"])]
        expected_key = family_key_of(json.loads(body))
        assert answer["family_key"] == expected_key and answer["topic"] == topic
        assert record.value == body
        assert record.key == expected_key.encode()
        assert record.partition == _partition_of(record.key)
    # The acknowledgement came before the answer: every record is there right after the last 202.


def test_team_id_travels_as_a_header(client: TestClient, kafka_broker: RunningBroker, topic: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    answer = client.post("/v1/submissions", content=sample_body(21), headers=AUTH).json()
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, answer["partition"])
        consumer.assign([tp])
        consumer.seek(tp, answer["offset"])
        batch = consumer.poll(timeout_ms=10_000, max_records=1)
    finally:
        consumer.close()
    (record,) = batch[tp]
    assert dict(record.headers) == {TEAM_HEADER: b"team-3603-b"}


def test_refused_requests_store_nothing(client: TestClient, kafka_broker: RunningBroker, topic: str) -> None:
    before = {(r.partition, r.offset) for r in _read(kafka_broker.bootstrap, topic)}
    bad_nik = sample_submission(31)
    bad_nik["members"][0]["nik"] = "3603120000000000"
    dup = sample_submission(32)
    dup["members"][1]["serial"] = 1
    miscounted = sample_submission(37, member_count=3)
    # The same key twice: valid whichever value a reader keeps, so only the duplicate check refuses it.
    duplicate_key = sample_body(38).replace(b'"revision": 1,', b'"revision": 1, "revision": 1,', 1)
    assert duplicate_key.count(b'"revision"') == 2
    cases = [
        (b"{not json", AUTH, 422),
        (json.dumps(sample_submission(33, schema_version="2")).encode(), AUTH, 422),
        (json.dumps(bad_nik).encode(), AUTH, 422),
        (json.dumps(dup).encode(), AUTH, 422),
        (json.dumps(sample_submission(34, members=[])).encode(), AUTH, 422),
        (b"x" * 9000, AUTH, 413),
        (sample_body(35), {}, 401),
        (sample_body(36), {"Authorization": "Bearer not-the-right-token-at-all"}, 401),
        (json.dumps(miscounted).encode(), AUTH, 422),
        (duplicate_key, AUTH, 422),
        (sample_body(39), {**AUTH, "Content-Type": "text/plain"}, 415),
        (sample_body(40), {"Authorization": AUTH["Authorization"]}, 415),
    ]
    for body, headers, status in cases:
        response = client.post("/v1/submissions", content=body, headers=headers)
        assert response.status_code == status, (status, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == status
        if status == 422:
            assert all(e["loc"][0] == "body" and e["msg"] for e in response.json()["errors"])
    miscounted_answer = client.post("/v1/submissions", content=json.dumps(miscounted).encode(), headers=AUTH).json()
    assert miscounted_answer["error_count"] == 1
    assert miscounted_answer["errors"] == [
        {
            "loc": ["body", "members"],
            "type": "member_count_mismatch",
            "msg": "member_count must equal the number of members living in the family (presence 1 or 4)",
        }
    ]
    duplicate_answer = client.post("/v1/submissions", content=duplicate_key, headers=AUTH).json()
    assert (duplicate_answer["errors"], duplicate_answer["error_count"]) == ([DUPLICATE_KEY_ERROR], 1)
    # Nothing refused reached the topic; a valid one sent afterwards is the only new record.
    assert client.post("/v1/submissions", content=sample_body(42), headers=AUTH).status_code == 202
    new = [r.value for r in _read(kafka_broker.bootstrap, topic) if (r.partition, r.offset) not in before]
    assert new == [sample_body(42)]


def test_a_body_within_the_gateway_limit_but_over_the_brokers_is_413_and_not_stored(
    kafka_broker: RunningBroker, topic: str
) -> None:
    # Unknown fields are ignored by the contract, so padding keeps the submission valid. The broker's
    # default message.max.bytes (1,048,588) is below 1 MiB of value plus key, header and batch framing.
    settings = GatewaySettings(bootstrap=kafka_broker.bootstrap, topic=topic, tokens={TOKEN: "t"})
    assert settings.max_body_bytes == 1024 * 1024
    doc = sample_submission(61)
    doc["notes"] = ""
    doc["notes"] = "x" * (settings.max_body_bytes - len(json.dumps(doc).encode()))
    body = json.dumps(doc).encode()
    assert len(body) == settings.max_body_bytes
    before = len(_read(kafka_broker.bootstrap, topic))
    with TestClient(build_app(settings)) as big:
        response = big.post("/v1/submissions", content=body, headers=AUTH)
        assert response.status_code == 413
        assert "too large" in response.json()["detail"]
        assert big.post("/v1/submissions", content=body + b" ", headers=AUTH).status_code == 413
    assert len(_read(kafka_broker.bootstrap, topic)) == before


def test_readiness_checks_the_broker_and_the_topic(client: TestClient, kafka_broker: RunningBroker) -> None:
    assert client.get("/readyz").status_code == 200
    settings = GatewaySettings(
        bootstrap=kafka_broker.bootstrap, topic="test.gateway.absent", tokens={TOKEN: "t"}, produce_timeout_s=2
    )
    with TestClient(build_app(settings)) as absent:
        started = time.monotonic()
        assert absent.get("/readyz").status_code == 503
        # A topic that does not exist (auto-creation is off) is never acknowledged: 503, bounded.
        response = absent.post("/v1/submissions", content=sample_body(41), headers=AUTH)
        assert response.status_code == 503
        assert time.monotonic() - started < 8


def test_unreachable_broker_gives_503_quickly_and_never_202() -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = GatewaySettings(bootstrap=closed, tokens={TOKEN: "t"}, produce_timeout_s=3)
    started = time.monotonic()
    with TestClient(build_app(settings)) as down:
        for serial in (51, 52, 53):
            t0 = time.monotonic()
            response = down.post("/v1/submissions", content=sample_body(serial), headers=AUTH)
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert time.monotonic() - t0 < 5
        assert down.get("/readyz").status_code == 503
        assert down.get("/healthz").status_code == 200
    assert time.monotonic() - started < 15


def _world(tmp_path: Path, serials: range) -> Path:
    world = tmp_path / "world"
    world.mkdir()
    (world / "submissions.jsonl").write_bytes(b"".join(sample_body(s) + b"\n" for s in serials))
    return world


def test_simulate_via_kafka_delivers_every_submission(
    dev_cli_app: typer.Typer, kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    topic = _new_topic(kafka_broker.bootstrap)
    world = _world(tmp_path, range(100, 160))
    result = CliRunner().invoke(
        dev_cli_app,
        [
            "simulate",
            "--rate",
            "200",
            "--duration",
            "10s",
            "--world",
            str(world),
            "--via",
            "kafka",
            "--bootstrap",
            kafka_broker.bootstrap,
            "--topic",
            topic,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output and "60" in result.output
    records = _read(kafka_broker.bootstrap, topic)
    assert sorted(r.value for r in records if r.value) == sorted(sample_body(s) for s in range(100, 160))
    assert {r.key for r in records} == {family_key_of(sample_submission(s)).encode() for s in range(100, 160)}


def test_simulate_streams_a_generated_world_through_the_gateway(
    cli_app: typer.Typer, dev_cli_app: typer.Typer, kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    runner = CliRunner()
    world = tmp_path / "generated"
    generated = runner.invoke(cli_app, ["generate", "--out", str(world), "--persons", "400", "--seed", "11"])
    assert generated.exit_code == 0, generated.output
    lines = [line for line in (world / "submissions.jsonl").read_bytes().splitlines() if line.strip()]
    # One invalid submission at the end: the gateway refuses it (422) and the simulator counts that.
    bad = sample_submission(170)
    bad["members"][0]["nik"] = "3603120000000000"
    with open(world / "submissions.jsonl", "ab") as fh:
        fh.write(json.dumps(bad).encode() + b"\n")
    topic = _new_topic(kafka_broker.bootstrap)
    settings = GatewaySettings(bootstrap=kafka_broker.bootstrap, topic=topic, tokens={TOKEN: "team-3603-b"})
    with serving(build_app(settings)) as base_url:
        assert httpx.get(f"{base_url}/readyz", timeout=10).status_code == 200
        result = runner.invoke(
            dev_cli_app,
            [
                "simulate",
                "--rate",
                "500",
                "--duration",
                "10s",
                "--world",
                str(world),
                "--via",
                "gateway",
                "--gateway-url",
                base_url,
                "--token",
                TOKEN,
            ],
        )
    assert result.exit_code == 1, result.output  # exit 1: one submission was rejected
    assert "rejected (422)" in result.output
    assert f"accepted {len(lines)}" in " ".join(result.output.split())
    records = _read(kafka_broker.bootstrap, topic)
    assert sorted(r.value for r in records if r.value) == sorted(lines)
    assert all(r.key == family_key_of(json.loads(r.value or b"")).encode() for r in records)
