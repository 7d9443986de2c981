"""The change handler's delivery order without a broker: produce, await every ack, THEN journal and store;
the journal restores the engine's master after a restart; the submissions catch-up rule."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from contracts.decode import decode_family_submission
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from integration.ids import PersonIds
from services.kafka.record import KafkaRecord
from services.linker import changelog
from services.linker.changelog import ChangelogSink, SendWriter
from services.linker.member_state import Probe
from services.linker.pipeline import OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.progress import SubmissionsProgress
from services.linker.store import LinkStore
from services.linker.updates.applier import UpdateTopics
from services.linker.updates.handler import ChangeHandler
from services.linker.updates.journal import MasterJournal
from tests.support.acking import AckingProducer, LogReader
from tests.support.linker import (
    FakeEvent,
    FakeMasterPerson,
    FakeMemberLinker,
    FakeMessage,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch
from tests.support.updates import dtks_row, population_change

IDS = PersonIds(b"k")
KK = "3603121705150003"
FAM = "3603010001000100001001"
AHMAD, RIZKY = nik_for(11), nik_for(13, yy=15)


def _setup(tmp_path: Path) -> tuple[ChangeHandler, LinkStore, MasterJournal, list[Any], list[asyncio.Future[None]]]:
    store = LinkStore(tmp_path / "links.duckdb")
    fake = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK)])
    members = [member_payload(1, "Ahmad Fauzi", AHMAD), member_payload(2, "Rizky", RIZKY, birth=(15, 5, 2015))]
    sub = decode_family_submission(json.dumps(submission_payload(members, family_key=FAM)).encode(), key=FAM.encode())
    store.apply(link_batch(SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r")), store, [sub]).update)
    journal = MasterJournal(tmp_path / "journal.duckdb")
    handler = ChangeHandler(
        fake,
        lambda: {0: store},
        IDS,
        UpdateTopics("m", "r", "u", "f"),
        journal,
        {"pop": "population", "dtks": "dtks"},
        "dlq",
        max_payload_bytes=100_000,
    )
    sent: list[Any] = []
    acks: list[asyncio.Future[None]] = []

    async def send(rec: OutboundRecord) -> asyncio.Future[None]:
        topic, key, value = rec.topic, rec.key, rec.value
        sent.append((topic, key, value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acks.append(fut)
        return fut

    handler.bind_sender(send)
    return handler, store, journal, sent, acks


def _events() -> list[KafkaRecord]:
    born = population_change("born", "c-born", RIZKY, "Rizky", birth_date=None)
    return [
        KafkaRecord("pop", 1, 5, b"ref-1", born, 1_700_000_000_000),
        KafkaRecord("pop", 1, 6, b"ref-2", b"{nope", 1_700_000_001_000),
        KafkaRecord("dtks", 0, 3, b"D-1", dtks_row("D-1", AHMAD, "Ahmad"), 1_700_000_002_000),
    ]


def _rizky_decision(store: LinkStore) -> str:
    (state,) = [s for s in store.find_members(Probe(niks=frozenset({RIZKY}))) if s.member_key.endswith("-02")]
    return state.decision


def test_journal_and_store_are_written_only_after_every_ack(tmp_path: Path) -> None:
    handler, store, journal, sent, acks = _setup(tmp_path)

    async def run() -> None:
        task = asyncio.create_task(handler.handle(_events()))
        while len(acks) < len(sent) or not sent:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for acknowledgements
        assert _rizky_decision(store) == "not_linked"  # store untouched so far
        for fut in acks:
            fut.set_result(None)
        await task

    asyncio.run(run())
    topics = [t for t, _, _ in sent]
    # dead letter; born: member + 2 events; dtks: member + link and welfare events; the family (Rizky now linked)
    assert topics == ["dlq", "m", "u", "u", "m", "u", "u", "f"]
    dead = DEAD_LETTER_ADAPTER.validate_json(sent[0][2])
    assert (dead.reason, dead.source_offset, dead.key) == (DeadLetterReason.NOT_JSON, 6, "ref-2")
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(v).event for t, _, v in sent if t == "u"]
    assert events == ["link_created", "merged", "link_changed", "welfare_changed"]
    assert _rizky_decision(store) == "linked"
    # The reader resumes after the batch; the file's members reflect the same positions.
    assert journal.positions() == store.change_positions() == {("pop", 1): 7, ("dtks", 0): 4}
    # After a restart the engine's master is rebuilt from the world; the journal brings the changes back.
    fresh = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK)])
    assert journal.replay(fresh) == 2
    assert fresh.master[RIZKY].full_name == "Rizky" and fresh.master[AHMAD].dtks_id == "D-1"


def test_a_failed_ack_fails_the_batch_and_leaves_journal_and_store_alone(tmp_path: Path) -> None:
    handler, store, journal, sent, acks = _setup(tmp_path)

    async def run() -> None:
        task = asyncio.create_task(handler.handle(_events()))
        while not acks or len(acks) < len(sent):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        acks[0].set_exception(RuntimeError("broker said no"))
        for fut in acks[1:]:
            fut.set_result(None)
        with pytest.raises(RuntimeError, match="broker said no"):
            await task

    asyncio.run(run())
    assert _rizky_decision(store) == "not_linked"
    assert journal.replay(FakeMemberLinker()) == 0
    assert journal.positions() == store.change_positions() == {}


def test_changes_wait_until_the_submissions_are_handled_to_the_end() -> None:
    progress = SubmissionsProgress()
    assert progress.caught_up({}, {})  # no submissions partitions owned
    assert not progress.caught_up({0: None}, {})  # end not known yet
    assert not progress.caught_up({0: 3, 1: 0}, {})
    progress.handled([FakeEvent(FakeMessage("s", 0, 2, 0.0, None, None))])  # type: ignore[list-item]
    assert progress.caught_up({0: 3, 1: 0}, {})
    assert not progress.caught_up({0: 5}, {})
    assert progress.caught_up({0: 5}, {0: 5})  # committed before this process started


def _with_changelog(tmp_path: Path) -> tuple[ChangeHandler, LinkStore, AckingProducer]:
    handler, store, journal, _, _ = _setup(tmp_path)
    producer = AckingProducer()
    logged = ChangeHandler(
        handler._master,  # noqa: SLF001 - the same engine, with a changelog this time
        lambda: {0: store},
        IDS,
        UpdateTopics("m", "r", "u", "f"),
        journal,
        {"pop": "population", "dtks": "dtks"},
        "dlq",
        max_payload_bytes=100_000,
        changelog=ChangelogSink(SendWriter("cl", producer)),
    )
    logged.bind_sender(producer)
    return logged, store, producer


def test_a_change_batch_puts_the_relinked_families_then_the_files_positions_on_the_changelog(tmp_path: Path) -> None:
    handler, store, producer = _with_changelog(tmp_path)
    asyncio.run(handler.handle(_events()))
    logged = [r for r in producer.sent if r.topic == "cl"]
    assert [(r.key, r.partition) for r in logged] == [(FAM.encode(), 0), (changelog.POSITIONS_KEY.encode(), 0)]
    first = producer.sent.index(logged[0])
    # The family's state goes after every output was acknowledged; the positions follow it in the same
    # write (on Kafka one transaction of the partition: a reader never sees them without the family).
    assert producer.acked_before[first] == first and producer.acked_before[first + 1] == first
    family = changelog.decode(logged[0].value or b"", 0)
    rizky = next(m for m in family.members if m.member_key == f"{FAM}-02")
    assert (rizky.decision, rizky.link_nik) == ("linked", RIZKY)
    assert changelog.decode_any(logged[1].value or b"", 0) == changelog.PositionsRecord({("pop", 1): 7, ("dtks", 0): 4})
    assert store.changelog_position(0) == 2  # offsets 0 and 1 of changelog partition 0
    # An instance with an empty disk restores the re-link and the change positions from the changelog.
    fresh = LinkStore(tmp_path / "fresh.duckdb")
    assert changelog.restore(fresh, 0, LogReader(producer, "cl")) == 2
    assert _rizky_decision(fresh) == "linked"
    assert fresh.find_family_members([FAM]) == store.find_family_members([FAM])
    assert fresh.change_positions() == store.change_positions() == {("pop", 1): 7, ("dtks", 0): 4}
    assert fresh.changelog_position(0) == 2


def test_a_file_caught_up_from_the_journal_puts_its_relinks_and_positions_on_the_changelog(tmp_path: Path) -> None:
    handler, store, producer = _with_changelog(tmp_path)
    # The engine and journal saw the changes, this file did not (another instance's file, or a crash).
    other = LinkStore(tmp_path / "other.duckdb")
    handler._files = lambda: {0: other}  # noqa: SLF001 - the batch runs against a file without members
    asyncio.run(handler.handle(_events()))
    handler._files = lambda: {0: store}  # noqa: SLF001 - the real file, behind the engine
    handler.forget([0])
    before = len(producer.sent)
    asyncio.run(handler.sync())
    logged = [r for r in producer.sent[before:] if r.topic == "cl"]
    assert [r.key for r in logged] == [FAM.encode(), changelog.POSITIONS_KEY.encode()]
    fresh = LinkStore(tmp_path / "fresh.duckdb")
    changelog.restore(fresh, 0, LogReader(producer, "cl"))
    assert _rizky_decision(fresh) == "linked"
    assert fresh.change_positions() == {("pop", 1): 7, ("dtks", 0): 4}
    other.close()
