"""The consumer examples of docs/consuming.md, run as written against the real broker.

Kafka's console consumer (Java, from the fetched jars), the kafkajs + Ajv consumer (Node) and the
franz-go consumer (Go) each read a members and a families topic provisioned from the catalogue: two
families, a re-submitted revision that drops a member (a tombstone, as the linker writes it) and
headers set here. Each must print exactly the keys, values, tombstone (null), partitions, offsets and
headers that were produced, and every value must validate against its published JSON Schema.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from kafka import KafkaProducer

from contracts.linkage_outputs import to_canonical_json
from contracts.partitioning import partition_for, producer_partitioner
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, topic_spec
from services.kafka.topics import provision
from tests.node_tools import node_tools
from tests.support.publisher import integrated_family, linked_member
from tools import broker as broker_service

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "consumers"
SCHEMAS = REPO / "contracts" / "schemas"
DEADLINE_S = 120.0
BANTEN, JABAR = "3603010001000100001001", "3273010001000100002001"


@dataclass(frozen=True)
class Produced:
    """One record as produced here: where the broker put it and what it holds."""

    topic: str
    partition: int
    offset: int
    key: str
    value: Any  # the parsed JSON, None for a tombstone
    headers: dict[str, str]


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        message = f"{tool} is needed for the consumer examples (docs/consuming.md; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _produce(bootstrap: str, members: str, families: str) -> list[Produced]:
    one = [linked_member(1, nik="3603125505850001", family_key=BANTEN), linked_member(2, nik=None, family_key=BANTEN)]
    two = [linked_member(1, nik="3273124101900002", family_key=JABAR, bpjs_id="0001234567899")]
    revised = [linked_member(1, nik="3603125505850001", family_key=BANTEN, revision=2)]  # member 02 dropped
    records: list[tuple[str, str, bytes | None]] = [
        *((members, m.member_key, to_canonical_json(m)) for m in one),
        (families, BANTEN, to_canonical_json(integrated_family(one))),
        *((members, m.member_key, to_canonical_json(m)) for m in two),
        (families, JABAR, to_canonical_json(integrated_family(two))),
        (members, revised[0].member_key, to_canonical_json(revised[0])),
        (members, f"{BANTEN}-02", None),  # the tombstone the linker writes for a dropped member
        (families, BANTEN, to_canonical_json(integrated_family(revised, revision=2))),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", partitioner=producer_partitioner)
    try:
        sent = []
        for i, (topic, key, value) in enumerate(records):
            headers = {"ce_id": f"test-{uuid.uuid4()}", "ce_specversion": "1.0", "test_index": str(i)}
            if value is not None:
                headers["content-type"] = "application/json"
            future = producer.send(
                topic, key=key.encode(), value=value, headers=[(k, v.encode()) for k, v in headers.items()]
            )
            sent.append((future, key, value, headers))
        producer.flush(timeout=30)
        out = []
        for future, key, value, headers in sent:
            meta = future.get(timeout=30)
            parsed = None if value is None else json.loads(value)
            out.append(Produced(meta.topic, meta.partition, meta.offset, key, parsed, headers))
        return out
    finally:
        producer.close(timeout=30)


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{cmd[0]} did not finish within {DEADLINE_S:.0f} s: {exc.stderr!r}") from exc
    assert done.returncode == 0, f"{cmd} exited {done.returncode}: {done.stderr[-3000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _console(bootstrap: str, topic: str, count: int, libs: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "KAFKA_LIBS": str(libs), "KAFKA_TOOLS": str(broker_service.tools_jar(libs).parent)}
    cmd = [
        str(EXAMPLES / "console" / "consume.sh"),
        bootstrap,
        topic,
        f"example.console.{uuid.uuid4().hex[:8]}",
        "--max-messages",
        str(count),
        "--timeout-ms",
        str(int(DEADLINE_S * 1000)),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=DEADLINE_S + 30, check=False)
    assert done.returncode == 0, f"console consumer exited {done.returncode}: {done.stderr[-3000:]}"
    assert f"Processed a total of {count} messages" in done.stderr
    lines = []
    for line in done.stdout.splitlines():
        partition, offset, headers, key, value = line.split("\t")
        assert partition.startswith("Partition:") and offset.startswith("Offset:"), line
        pairs = [] if headers == "NO_HEADERS" else [h.split(":", 1) for h in headers.split(",")]
        lines.append(
            {
                "topic": topic,
                "partition": int(partition.removeprefix("Partition:")),
                "offset": int(offset.removeprefix("Offset:")),
                "key": key,
                "value": None if value == "null" else json.loads(value),
                "headers": dict(pairs),
            }
        )
    return lines


def _node(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    node_dir = node_tools()  # the pinned kafkajs, Ajv and ajv-formats (tests/node)
    env = {**os.environ, "NODE_PATH": str(node_dir / "node_modules")}
    cmd = [
        "node",
        str(EXAMPLES / "node" / "consume.cjs"),
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        f"example.node.{uuid.uuid4().hex[:8]}",
        "--schemas",
        str(SCHEMAS),
        "--max-records",
        str(count),
    ]
    return _run(cmd, cwd=REPO, env=env)


def _go_binary(tmp_path: Path) -> Path:
    go = _need("go")
    binary = tmp_path / "consume"
    # Offline: `make install` ran `go mod download`; a missing module is an error, not a download.
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "GOPROXY": "off"}
    done = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=EXAMPLES / "go",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"go build failed: {done.stderr[-3000:]}"
    return binary


def _go(binary: Path, bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    cmd = [
        str(binary),
        "-bootstrap",
        bootstrap,
        "-topic",
        topic,
        "-group",
        f"example.go.{uuid.uuid4().hex[:8]}",
        "-max-records",
        str(count),
    ]
    return _run(cmd, cwd=REPO)


def _expected(produced: list[Produced], topic: str) -> list[dict[str, Any]]:
    return [
        {
            "topic": p.topic,
            "partition": p.partition,
            "offset": p.offset,
            "key": p.key,
            "value": p.value,
            "headers": p.headers,
        }
        for p in produced
        if p.topic == topic
    ]


def _ordered(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("topic", "partition", "offset", "key", "value", "headers")
    return sorted(({k: line[k] for k in keep} for line in lines), key=lambda r: (r["partition"], r["offset"]))


def test_console_node_and_go_consumers_print_exactly_what_was_produced(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    _need("java")
    _need("node")
    binary = _go_binary(tmp_path)
    libs = kafka_broker.config.libs_dir
    broker_service.fetch_tools(libs)  # `make install` fetched it already; a no-op then
    tag = uuid.uuid4().hex[:8]
    specs = [replace(topic_spec(name), name=f"{name}.{tag}") for name in (LINKED_MEMBERS, LINKED_FAMILIES)]
    members, families = (s.name for s in specs)
    report = provision(kafka_broker.bootstrap, specs)
    assert report.created == [members, families]
    produced = _produce(kafka_broker.bootstrap, members, families)

    # Co-partitioning (contracts/partitioning.py): a family and its members share a partition number.
    for p in produced:
        assert p.partition == partition_for(p.key.encode(), 4)
    assert {p.partition for p in produced if p.key.startswith(BANTEN)} == {partition_for(BANTEN.encode(), 4)}
    validators = {members: _validator("linked_member.v1.json"), families: _validator("integrated_family.v1.json")}

    for topic in (members, families):
        expected = _expected(produced, topic)
        count = len(expected)
        outputs = {
            "console": _console(kafka_broker.bootstrap, topic, count, libs),
            "node": _node(kafka_broker.bootstrap, topic, count),
            "go": _go(binary, kafka_broker.bootstrap, topic, count),
        }
        for client, lines in outputs.items():
            assert _ordered(lines) == _ordered(expected), client
            for line in lines:
                if line["value"] is not None:
                    validators[topic].validate(line["value"])
        # The Node example validated each value with Ajv itself: true, and null for the tombstone only.
        assert [(n["key"], n["valid"]) for n in _ordered_full(outputs["node"])] == [
            (e["key"], None if e["value"] is None else True) for e in _ordered(expected)
        ]
    tombstones = [(p.topic, p.key) for p in produced if p.value is None]
    assert tombstones == [(members, f"{BANTEN}-02")]


def _ordered_full(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(lines, key=lambda r: (r["partition"], r["offset"]))


def _validator(schema_file: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
