"""The gate between the submissions agent and the change reader, without a broker: submissions of a file
ahead of this instance's master wait for the reader (which then does not wait for them in turn), the
wait is bounded; and the reader's records keep a fixed order and faust's timestamps in seconds."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from prometheus_client import CollectorRegistry

from integration.ids import PersonIds
from services.kafka.record import KafkaRecord
from services.linker.pipeline import OutboundRecord
from services.linker.progress import SubmissionsProgress
from services.linker.runner import build_worker_app
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore
from services.linker.updates.applier import UpdateTopics
from services.linker.updates.handler import ChangeHandler
from services.linker.updates.journal import MasterJournal
from services.linker.updates.positions import FileStatus
from services.linker.updates.reader import records_of
from services.linker.updates.wiring import MasterUpdates
from services.observability.linker_metrics import LinkerMetrics
from services.observability.recorder import BatchRecorder
from tests.support.linker import FakeMasterPerson, FakeMemberLinker, nik_for
from tests.support.updates import population_change

SUBMISSIONS = "subs"


def _updates(tmp_path: Path, wait_s: float, ahead: bool = True) -> tuple[MasterUpdates, LinkStore]:
    store = LinkStore(tmp_path / "links-p0.duckdb")
    if ahead:
        store.apply_changes({}, {("pop", 0): 2})  # its previous owner read changes 0 and 1
    handler = ChangeHandler(
        FakeMemberLinker(),
        lambda: {0: store},
        PersonIds(b"k"),
        UpdateTopics("m", "r", "u", "f"),
        MasterJournal(tmp_path / "j.duckdb"),
        {"pop": "population"},
        "dlq",
        max_payload_bytes=100_000,
    )

    async def send(rec: OutboundRecord) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    handler.bind_sender(send)
    app: Any = SimpleNamespace(
        consumer=SimpleNamespace(assignment=lambda: {TP(SUBMISSIONS, 0)}, highwater=lambda tp: 5)
    )
    settings = LinkerSettings(
        submissions_topic=SUBMISSIONS, updates_ahead_wait_seconds=wait_s, updates_catchup_seconds=30
    )
    updates = MasterUpdates(app, settings, handler, asyncio.Lock(), SubmissionsProgress())
    updates.assigned({TP(SUBMISSIONS, 0), TP("other", 1)})
    return updates, store


def _change(offset: int) -> KafkaRecord:
    value = population_change("born", f"c-{offset}", "3603121505800011", "Ahmad Fauzi")
    return KafkaRecord("pop", 0, offset, b"ref", value, 1_700_000_000_000)


def test_submissions_of_a_file_ahead_wait_for_the_reader(tmp_path: Path) -> None:
    updates, store = _updates(tmp_path, wait_s=60)

    async def run() -> None:
        gate = asyncio.create_task(updates.before_submissions({0}))
        while updates.handler.status(0) is None:
            await asyncio.sleep(0.01)
        assert updates.handler.status(0) is FileStatus.AHEAD and updates.handler.blocked == {0}
        assert not gate.done()
        # The reader's batch does not wait for the submissions agent, which waits for it.
        await asyncio.wait_for(updates.apply([_change(0)]), 5)
        assert not gate.done() and store.change_positions() == {("pop", 0): 2}  # still ahead: untouched
        await asyncio.wait_for(updates.apply([_change(1)]), 5)
        await asyncio.wait_for(gate, 5)

    asyncio.run(run())
    assert updates.handler.engine_positions == store.change_positions() == {("pop", 0): 2}
    assert updates.handler.ready([0]) and updates.handler.blocked == set()


def test_a_gate_that_only_syncs_does_not_release_the_readers_ordering_wait(tmp_path: Path) -> None:
    updates, _ = _updates(tmp_path, wait_s=60, ahead=False)
    lock = updates._lock  # noqa: SLF001 - held here as a change batch would hold it

    async def run() -> None:
        await lock.acquire()
        gate = asyncio.create_task(updates.before_submissions({0}))  # must sync the file: waits for the lock
        await asyncio.sleep(0.05)
        # The submissions agent is not waiting for the reader, so the reader keeps waiting for it
        # (its 5 submissions on partition 0 are not handled).
        waiting = asyncio.create_task(updates.wait_for_submissions())
        await asyncio.sleep(0.3)
        assert not waiting.done() and not gate.done()
        lock.release()
        await asyncio.wait_for(gate, 5)
        assert not waiting.done()
        waiting.cancel()

    asyncio.run(run())
    assert updates.handler.ready([0])


def test_the_wait_for_a_file_ahead_is_bounded(tmp_path: Path) -> None:
    updates, store = _updates(tmp_path, wait_s=0.2)
    syncs: list[set[int]] = []
    sync = updates.handler.sync

    async def counted(partitions: set[int]) -> set[int]:
        syncs.append(set(partitions))
        return await sync(partitions)

    updates.handler.sync = counted  # type: ignore[method-assign]
    # Still ahead when the wait ends: its submissions are linked against this master anyway.
    asyncio.run(asyncio.wait_for(updates.before_submissions({0}), 5))
    assert updates.handler.status(0) is FileStatus.AHEAD and updates.given_up == {0}
    assert len(syncs) >= 2 and all(p == {0} for p in syncs)  # synced, then waited and synced again
    tried = len(syncs)
    asyncio.run(asyncio.wait_for(updates.before_submissions({0}), 5))  # given up on: no second wait
    assert len(syncs) == tried
    updates.released({0})  # revoked: not owned any more (the consumer may still list it during the rebalance)
    assert updates.handler.status(0) is None and updates.owned() == [] and updates.given_up == frozenset()
    updates.assigned({TP(SUBMISSIONS, 0)})  # and back: the file is checked again
    assert updates.owned() == [TP(SUBMISSIONS, 0)]
    asyncio.run(updates.before_submissions({0}))
    assert updates.handler.status(0) is FileStatus.AHEAD


def test_reader_records_in_topic_partition_offset_order_with_timestamps_in_ms() -> None:
    def rec(topic: str, partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(topic, partition, offset, 1_700_000_000_123, 0, b"k", b"v", None, 1, 1, ())

    batch = {
        TopicPartition("pop", 1): [rec("pop", 1, 0)],
        TopicPartition("dtks", 0): [rec("dtks", 0, 5), rec("dtks", 0, 6)],
        TopicPartition("pop", 0): [rec("pop", 0, 3)],
    }
    out = records_of(batch)
    assert [(r.topic, r.partition, r.offset) for r in out] == [
        ("dtks", 0, 5),
        ("dtks", 0, 6),
        ("pop", 0, 3),
        ("pop", 1, 0),
    ]
    assert out[0] == KafkaRecord("dtks", 0, 5, b"k", b"v", 1_700_000_000_123)


def test_the_linker_composed_with_metrics_takes_master_updates(tmp_path: Path) -> None:
    # The compose configuration: a metrics port AND updates on. The engine object given to the updates
    # wiring must be the real one (metrics attach to it), not a wrapper without `upsert_master`.
    fake = FakeMemberLinker.of([FakeMasterPerson(nik_for(1), "Ahmad Fauzi", "3603121705150003")])
    settings = LinkerSettings(state_dir=tmp_path / "state", metrics_port=0, updates_enabled=True)
    app, server = build_worker_app(settings, linker=fake, master_records=1)
    assert server is not None
    try:
        assert "read_master_changes" in [t.__name__ for t in app._app_tasks]  # the change reader is installed
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        server.stop()
    # The change topics and the update events are counted (pre-initialised at 0).
    assert 'regsosek_messages_consumed_total{topic="dukcapil.population.changes.v1"} 0.0' in text
    assert 'regsosek_messages_produced_total{topic="linkage.updates.v1"} 0.0' in text


def test_a_change_batch_is_counted_by_the_recorder(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    recorder = BatchRecorder(LinkerMetrics(registry), dlq_topic="dlq")
    store = LinkStore(tmp_path / "links-p0.duckdb")
    handler = ChangeHandler(
        FakeMemberLinker(),
        lambda: {0: store},
        PersonIds(b"k"),
        UpdateTopics("m", "r", "u", "f"),
        MasterJournal(tmp_path / "j.duckdb"),
        {"pop": "population"},
        "dlq",
        max_payload_bytes=100_000,
        recorder=recorder,
    )

    async def send(rec: OutboundRecord) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    handler.bind_sender(send)
    broken = KafkaRecord("pop", 0, 1, b"ref", b"{broken", 1_700_000_000_000)
    asyncio.run(handler.handle([_change(0), broken]))
    assert registry.get_sample_value("regsosek_messages_consumed_total", {"topic": "pop"}) == 2
    assert registry.get_sample_value("regsosek_messages_produced_total", {"topic": "dlq"}) == 1
    assert registry.get_sample_value("regsosek_dead_letters_total", {"reason": "not_json"}) == 1
