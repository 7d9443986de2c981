"""The faust handler's delivery order without a broker: produce, await every ack, THEN the link store."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from services.linker.app import SubmissionHandler
from services.linker.ids import PersonIds
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore
from services.linker.testing import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)

SETTINGS = LinkerSettings(members_topic="m", families_topic="f", review_topic="r", dlq_topic="dlq")


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None


@dataclass
class _Event:
    message: _Message


class _Topic:
    """A stand-in for the producer on one topic: `send` returns a future the test resolves (the ack)."""

    def __init__(self, name: str, log: list[tuple[str, bytes | None, bytes | None]]) -> None:
        self.name = name
        self.log = log
        self.pending: list[asyncio.Future[None]] = []

    async def send(self, key: bytes | None, value: bytes | None) -> asyncio.Future[None]:
        self.log.append((self.name, key, value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        return fut


def _handler(store: LinkStore) -> tuple[SubmissionHandler, dict[str, _Topic], list[Any]]:
    fake = FakeMemberLinker.of([FakeMasterPerson(nik_for(2), "Ahmad Fauzi", "3603121705150003")])
    pipeline = SubmissionLinker(fake, store, PersonIds(b"k"), OutputTopics("m", "f", "r"))
    handler = SubmissionHandler(SETTINGS, pipeline, store)
    log: list[Any] = []
    topics = {n: _Topic(n, log) for n in ("m", "f", "r", "dlq")}

    async def send(topic: str, key: bytes | None, value: bytes | None) -> asyncio.Future[None]:
        return await topics[topic].send(key, value)

    handler.bind_sender(send)
    return handler, topics, log


def _events() -> list[_Event]:
    good = json.dumps(submission_payload([member_payload(1, "Ahmad Fauzi", nik_for(2))])).encode()
    return [
        _Event(_Message("subs", 0, 7, 1_700_000_000.0, FAMILY_KEY.encode(), good)),
        _Event(_Message("subs", 0, 8, 1_700_000_001.0, FAMILY_KEY.encode(), b"{not json")),
    ]


async def _ack_all(topics: dict[str, _Topic], error: Exception | None = None) -> None:
    while not any(t.pending for t in topics.values()):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    for t in topics.values():
        for fut in t.pending:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(None)


def test_store_is_written_only_after_every_ack(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    handler, topics, log = _handler(store)

    async def scenario() -> None:
        task = asyncio.create_task(handler.handle(_events()))  # type: ignore[arg-type]
        while not any(t.pending for t in topics.values()):
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for the broker
        assert store.counts()["families"] == 0  # nothing recorded before the acks
        await _ack_all(topics)
        await task

    asyncio.run(scenario())
    assert store.counts() == {"families": 1, "minted_ids": 0}
    assert sorted((t, k) for t, k, _ in log) == [
        ("dlq", FAMILY_KEY.encode()), ("f", FAMILY_KEY.encode()), ("m", f"{FAMILY_KEY}-01".encode()),
    ]  # fmt: skip
    dead = DEAD_LETTER_ADAPTER.validate_json(next(v for t, _, v in log if t == "dlq") or b"")
    assert (dead.reason, dead.source_offset) == (DeadLetterReason.NOT_JSON, 8)
    assert handler.counters.dead_letters == {"not_json": 1}


def test_a_failed_ack_fails_the_batch_and_leaves_the_store_alone(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    handler, topics, _ = _handler(store)

    async def scenario() -> None:
        task = asyncio.create_task(handler.handle(_events()))  # type: ignore[arg-type]
        await _ack_all(topics, error=ConnectionError("broker gone"))
        with pytest.raises(ConnectionError):
            await task

    asyncio.run(scenario())
    assert store.counts() == {"families": 0, "minted_ids": 0}


def test_records_of_a_partition_revoked_before_the_batch_ran_are_left_to_the_new_owner(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    handler, topics, log = _handler(store)
    owned = {1}  # partition 0 was handed over while the batch waited for the lock
    handler.bind_ownership(lambda: owned)

    result = asyncio.run(handler.handle(_events()))  # type: ignore[arg-type]
    assert (log, result.members_linked, handler.counters.not_owned) == ([], 0, 2)
    assert store.counts() == {"families": 0, "minted_ids": 0}  # nothing produced, nothing stored

    owned.add(0)  # owned again (a later assignment): linked as usual

    async def scenario() -> None:
        task = asyncio.create_task(handler.handle(_events()))  # type: ignore[arg-type]
        await _ack_all(topics)
        await task

    asyncio.run(scenario())
    assert sorted(t for t, _, _ in log) == ["dlq", "f", "m"]
    assert store.counts() == {"families": 1, "minted_ids": 0}
    assert handler.counters.not_owned == 2
