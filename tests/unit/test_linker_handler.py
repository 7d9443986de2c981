"""The faust handler's delivery order without a broker: produce, await every ack, THEN the link store."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from integration.ids import PersonIds
from services.linker.app import SubmissionHandler
from services.linker.pipeline import BatchResult, OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore, StoreUpdate
from tests.support.linker import (
    FAMILY_KEY,
    FakeEvent,
    FakeMasterPerson,
    FakeMemberLinker,
    FakeMessage,
    member_payload,
    nik_for,
    submission_payload,
)

SETTINGS = LinkerSettings(members_topic="m", families_topic="f", review_topic="r", dlq_topic="dlq")


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
    pipeline = SubmissionLinker(fake, PersonIds(b"k"), OutputTopics("m", "f", "r"))
    handler = SubmissionHandler(SETTINGS, pipeline, store)
    log: list[Any] = []
    topics = {n: _Topic(n, log) for n in ("m", "f", "r", "dlq")}

    async def send(rec: OutboundRecord) -> asyncio.Future[None]:
        topic, key, value = rec.topic, rec.key, rec.value
        return await topics[topic].send(key, value)

    handler.bind_sender(send)
    return handler, topics, log


async def _handle(handler: SubmissionHandler, events: list[FakeEvent]) -> BatchResult:
    """A batch as the faust agent runs it, then its store write awaited (as the next batch does)."""
    result = await handler.handle_pipelined(events, on_stored=lambda _: None)  # type: ignore[arg-type]
    await handler.settle()
    return result


def _events() -> list[FakeEvent]:
    good = json.dumps(submission_payload([member_payload(1, "Ahmad Fauzi", nik_for(2))])).encode()
    return [
        FakeEvent(FakeMessage("subs", 0, 7, 1_700_000_000.0, FAMILY_KEY.encode(), good)),
        FakeEvent(FakeMessage("subs", 0, 8, 1_700_000_001.0, FAMILY_KEY.encode(), b"{not json")),
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
        task = asyncio.create_task(_handle(handler, _events()))
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
        ("dlq", FAMILY_KEY.encode()),
        ("f", FAMILY_KEY.encode()),
        ("m", f"{FAMILY_KEY}-01".encode()),
    ]
    dead = DEAD_LETTER_ADAPTER.validate_json(next(v for t, _, v in log if t == "dlq") or b"")
    assert (dead.reason, dead.source_offset) == (DeadLetterReason.NOT_JSON, 8)
    assert handler.counters.dead_letters == {"not_json": 1}


def test_a_failed_ack_fails_the_batch_and_leaves_the_store_alone(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    handler, topics, _ = _handler(store)

    async def scenario() -> None:
        task = asyncio.create_task(_handle(handler, _events()))
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

    result = asyncio.run(_handle(handler, _events()))
    assert (log, result.members_linked, handler.counters.not_owned) == ([], 0, 2)
    assert store.counts() == {"families": 0, "minted_ids": 0}  # nothing produced, nothing stored

    owned.add(0)  # owned again (a later assignment): linked as usual

    async def scenario() -> None:
        task = asyncio.create_task(_handle(handler, _events()))
        await _ack_all(topics)
        await task

    asyncio.run(scenario())
    assert sorted(t for t, _, _ in log) == ["dlq", "f", "m"]
    assert store.counts() == {"families": 1, "minted_ids": 0}
    assert handler.counters.not_owned == 2


class _BlockingStore(LinkStore):
    """A link store whose writes wait until the test lets them through (or fail)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.error: Exception | None = None

    def apply(self, update: StoreUpdate, positions: Mapping[int, int] | None = None) -> None:
        assert self.gate.wait(10)
        if self.error is not None:
            raise self.error
        super().apply(update, positions)


def _revision(revision: int, offset: int) -> list[FakeEvent]:
    value = json.dumps(submission_payload([member_payload(1, "Ahmad Fauzi", nik_for(2))], revision=revision))
    return [FakeEvent(FakeMessage("subs", 0, offset, 1_700_000_000.0, FAMILY_KEY.encode(), value.encode()))]


def test_pipelined_batches_ack_after_the_store_write_and_the_next_batch_reads_it(tmp_path: Path) -> None:
    store = _BlockingStore(tmp_path / "links.duckdb")
    handler, topics, log = _handler(store)
    stored: list[str] = []

    async def scenario() -> None:
        first = asyncio.create_task(handler.handle_pipelined(_revision(2, 7), on_stored=lambda _: stored.append("r2")))
        await _ack_all(topics)
        await first  # returns with the outputs acknowledged and the store write still running
        assert (stored, store.counts()["families"]) == ([], 0)
        # A late revision 1: linked at once, but read against the store only after revision 2 is written.
        late = asyncio.create_task(handler.handle_pipelined(_revision(1, 8), on_stored=lambda _: stored.append("r1")))
        await asyncio.sleep(0.2)
        assert not late.done() and stored == []
        store.gate.set()
        result = await late
        await handler.settle()
        assert (result.stale, result.records) == (1, [])
        assert stored == ["r2", "r1"]

    asyncio.run(scenario())
    assert store.families([FAMILY_KEY])[FAMILY_KEY].revision == 2
    assert sorted(t for t, _, _ in log) == ["f", "m"]  # revision 2's records only


def test_a_failed_pipelined_store_write_never_acks_and_fails_the_next_batch(tmp_path: Path) -> None:
    store = _BlockingStore(tmp_path / "links.duckdb")
    store.error = OSError("disk full")
    handler, topics, _ = _handler(store)
    stored: list[str] = []
    failures: list[BaseException] = []

    async def scenario() -> None:
        first = asyncio.create_task(handler.handle_pipelined(_revision(1, 7), on_stored=lambda _: stored.append("r1")))
        await _ack_all(topics)
        await first
        handler.on_store_failure(failures.append)
        store.gate.set()
        with pytest.raises(OSError, match="disk full"):
            await handler.handle_pipelined(_revision(2, 8), on_stored=lambda _: stored.append("r2"))
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert stored == [] and [str(e) for e in failures] == ["disk full"]
    assert store.counts() == {"families": 0, "minted_ids": 0}
