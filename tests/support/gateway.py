"""Test doubles, factories and a background server for the gateway (shared by unit and integration tests)."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from contracts.family import FamilyKey
from services.gateway.producer import BrokerUnavailable, Headers, MessageTooLarge
from services.kafka.record import Delivered

#: A valid FamilySubmission v1 (the example of docs/data-model.md): NIK and KK pass the structure checks.
_SAMPLE: dict[str, Any] = {
    "schema_version": "1",
    "submission_id": "S-3603-0000001-r1",
    "revision": 1,
    "enumerator_code": "E3603010001",
    "enumerated_at": "2022-10-20T09:15:00+07:00",
    "family_key": {
        "province": "36",
        "regency": "03",
        "district": "010",
        "village": "001",
        "sls": "0001",
        "sub_sls": "00",
        "building_serial": "001",
        "family_serial": "001",
    },
    "address": {"street": "Jl. Melati No. 12", "rt": "002", "rw": "005"},
    "kk_number": "3603121705150003",
    "kk_code": 0,
    "head_name": "Ahmad Fauzi",
    "member_count": 2,
    "members": [
        {
            "serial": 1,
            "name": "Ahmad Fauzi",
            "nik": "3603121505800002",
            "presence": 1,
            "sex": 1,
            "birth_date": {"day": 15, "month": 5, "year": 1980},
            "age": 42,
            "marital_status": 2,
            "relationship": 1,
        },
        {
            "serial": 2,
            "name": "Siti Aminah",
            "nik": None,
            "presence": 1,
            "sex": 2,
            "birth_date": {"day": None, "month": None, "year": 1984},
            "age": 38,
            "marital_status": 2,
            "relationship": 2,
        },
    ],
}


def sample_submission(serial: int = 1, **overrides: Any) -> dict[str, Any]:
    """A fresh valid submission; `serial` varies the submission id and family serial (1..999)."""
    doc = copy.deepcopy(_SAMPLE)
    doc["submission_id"] = f"S-3603-{serial:07d}-r1"
    doc["family_key"]["family_serial"] = f"{serial:03d}"
    doc.update(overrides)
    return doc


def sample_body(serial: int = 1, **overrides: Any) -> bytes:
    """`sample_submission` as the JSON bytes a device would send."""
    return json.dumps(sample_submission(serial, **overrides), ensure_ascii=False).encode("utf-8")


def family_key_of(doc: dict[str, Any]) -> str:
    """The 22-digit family key of a submission document (field order of REGSOSEK22-K)."""
    return FamilyKey.model_validate(doc["family_key"]).key


@dataclass
class ProducedRecord:
    """One record the fake producer stored."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class FakeSubmissionProducer:
    """In-memory `SubmissionProducer`: stores records, or fails the way the test asks."""

    topic: str = "regsosek.submissions.v1"
    fail_with: type[Exception] | None = None
    is_ready: bool = True
    records: list[ProducedRecord] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def produce(self, key: bytes, value: bytes, headers: Headers = ()) -> Delivered:
        if self.fail_with is BrokerUnavailable:
            raise BrokerUnavailable("fake broker is down")
        if self.fail_with is MessageTooLarge:
            raise MessageTooLarge("fake broker refused the size")
        if self.fail_with is not None:
            raise self.fail_with("fake failure")
        self.records.append(ProducedRecord(key, value, list(headers)))
        return Delivered(self.topic, 0, len(self.records) - 1)

    async def ready(self) -> bool:
        return self.is_ready


@contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 20.0) -> Iterator[str]:
    """Run `app` under a real uvicorn server in a background thread; yields its base URL."""
    import uvicorn

    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="gateway-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
