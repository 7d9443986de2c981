"""Change positions with several linker instances, without a broker: the bookkeeping (engine positions in
the journal, per-file positions in each link-store file), which journalled changes a lagging file gets,
and the handler's sync: a file behind the engine is caught up, a file ahead of it is left alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from contracts.decode import decode_family_submission
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from integration.ids import PersonIds
from integration.master import MasterPerson
from services.kafka.record import KafkaRecord
from services.linker.pipeline import OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.linker.updates.applier import UpdateTopics
from services.linker.updates.changes import Change
from services.linker.updates.handler import ChangeHandler
from services.linker.updates.journal import JournalEntry, MasterJournal
from services.linker.updates.positions import FileStatus, advanced, file_status, unseen
from tests.support.linker import (
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch
from tests.support.updates import population_change

IDS = PersonIds(b"k")
KK = "3603121705150003"
AHMAD = nik_for(11)
RIZKY, SITI, BUDI = nik_for(13, yy=15), nik_for(14, yy=16), nik_for(15, yy=17)
FAMS = {0: "3603010001000100001001", 1: "3603010001000100001002", 2: "3603010001000100001003"}
PEOPLE = {0: (RIZKY, "Rizky"), 1: (SITI, "Siti"), 2: (BUDI, "Budi")}


def _msg(partition: int, offset: int, value: bytes, topic: str = "pop") -> KafkaRecord:
    return KafkaRecord(topic, partition, offset, f"ref-{offset}".encode(), value, 1_700_000_000_000 + offset * 1000)


def _born(partition: int, offset: int, who: int) -> KafkaRecord:
    nik, name = PEOPLE[who]
    return _msg(partition, offset, population_change("born", f"c-born-{who}", nik, name))


def test_positions_advance_per_partition_and_never_backwards() -> None:
    start = {("pop", 0): 5}
    moved = advanced(start, [_msg(0, 7, b""), _msg(0, 3, b""), _msg(1, 0, b""), _msg(0, 0, b"", "dtks")])
    assert moved == {("pop", 0): 8, ("pop", 1): 1, ("dtks", 0): 1}
    assert start == {("pop", 0): 5}  # a copy


def test_file_status_against_the_engine() -> None:
    engine = {("pop", 0): 8, ("pop", 1): 1}
    assert file_status(dict(engine), engine) is FileStatus.IN_SYNC
    assert file_status({}, {}) is FileStatus.IN_SYNC
    assert file_status({("pop", 0): 8}, engine) is FileStatus.BEHIND  # ("pop", 1) missing = 0
    assert file_status({}, engine) is FileStatus.BEHIND  # a new file
    assert file_status({("pop", 0): 9, ("pop", 1): 1}, engine) is FileStatus.AHEAD
    assert file_status({("pop", 0): 2, ("dtks", 0): 1}, engine) is FileStatus.AHEAD  # ahead anywhere wins
    assert unseen(("pop", 0, 8), {("pop", 0): 8}) and not unseen(("pop", 0, 7), {("pop", 0): 8})
    assert unseen(("pop", 1, 0), {("pop", 0): 8})
    assert not unseen(None, {})  # journalled before positions were kept: applied to every file then


def test_journal_keeps_positions_with_its_rows_and_selects_what_a_file_has_not_seen(tmp_path: Path) -> None:
    journal = MasterJournal(tmp_path / "j.duckdb")
    handler = ChangeHandler(
        FakeMemberLinker(),
        dict,
        IDS,
        UpdateTopics("m", "r", "u", "f"),
        journal,
        {"pop": "population"},
        "dlq",
        max_payload_bytes=100_000,
    )
    entries, dead = handler.classify([_born(0, 4, 0), _msg(0, 5, b"{bad"), _born(1, 0, 1), _born(0, 6, 2)])
    assert len(dead) == 1
    old = Change(entries[0].change.cause.model_copy(update={"change_id": "c-old"}), person=_person(AHMAD))
    journal.record([old])  # as journalled before positions were kept
    journal.record(entries, {("pop", 0): 7, ("pop", 1): 1})
    journal.record(entries, {("pop", 0): 7, ("pop", 1): 1})  # re-delivered: kept once
    assert journal.positions() == {("pop", 0): 7, ("pop", 1): 1}

    def ids(found: list[JournalEntry]) -> list[str]:
        return [e.change.cause.change_id for e in found]

    assert ids(journal.unseen_by({})) == ["c-born-0", "c-born-1", "c-born-2"]
    assert ids(journal.unseen_by({("pop", 0): 5})) == ["c-born-1", "c-born-2"]
    assert ids(journal.unseen_by({("pop", 0): 7, ("pop", 1): 1})) == []
    (entry,) = journal.unseen_by({("pop", 0): 7})
    assert entry == JournalEntry(entries[1].change, ("pop", 1, 0))  # cause and fact as classified
    fresh = FakeMemberLinker()
    assert journal.replay(fresh) == 4 and sorted(fresh.master) == sorted([AHMAD, RIZKY, SITI, BUDI])


def _person(nik: str) -> MasterPerson:
    return MasterPerson(nik, KK, "Ahmad Fauzi", "M", "1980-05-15", "3603122001", "Jl. Melati No. 12", False)


def _file(tmp_path: Path, partition: int, fake: FakeMemberLinker) -> LinkStore:
    """A link-store file whose family has Ahmad (in the master) and one person the master lacks yet."""
    store = LinkStore(tmp_path / f"links-p{partition}.duckdb")
    nik, name = PEOPLE[partition]
    yy = int(nik[10:12])
    members = [member_payload(1, "Ahmad Fauzi", AHMAD), member_payload(2, name, nik, birth=(15, 5, 2000 + yy))]
    raw = json.dumps(submission_payload(members, family_key=FAMS[partition])).encode()
    sub = decode_family_submission(raw, key=FAMS[partition].encode())
    store.apply(link_batch(SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r")), store, [sub]).update)
    return store


def _handler(tmp_path: Path, files: dict[int, LinkStore], fake: FakeMemberLinker) -> tuple[ChangeHandler, list[Any]]:
    journal = MasterJournal(tmp_path / "journal.duckdb")
    handler = ChangeHandler(
        fake,
        lambda: dict(files),
        IDS,
        UpdateTopics("m", "r", "u", "f"),
        journal,
        {"pop": "population"},
        "dlq",
        max_payload_bytes=100_000,
    )
    sent: list[Any] = []

    async def send(rec: OutboundRecord) -> asyncio.Future[None]:
        topic, key, value = rec.topic, rec.key, rec.value
        sent.append((topic, (key or b"").decode(), value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    handler.bind_sender(send)
    return handler, sent


def _events(sent: list[Any]) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for topic, key, value in sent:
        if topic == "u":
            e = LINKAGE_UPDATE_ADAPTER.validate_json(value)
            out.append((key, str(e.event), getattr(e, "new_person_id", None)))
    return out


def test_a_lagging_file_is_caught_up_from_the_journal_once(tmp_path: Path) -> None:
    fake = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK)])
    files = {0: _file(tmp_path, 0, fake)}
    other = _file(tmp_path, 1, fake)  # owned by another instance while the changes come
    handler, sent = _handler(tmp_path, files, fake)
    asyncio.run(handler.handle([_born(0, 0, 0), _born(0, 1, 1)]))
    member0, member1 = f"{FAMS[0]}-02", f"{FAMS[1]}-02"
    assert _events(sent) == [(member0, "link_created", None), (member0, "merged", IDS.for_master(RIZKY))]
    assert files[0].change_positions() == {("pop", 0): 2}
    assert other.change_positions() == {}

    # This instance acquires partition 1: its file never saw the two changes.
    files[1] = other
    sent.clear()
    assert asyncio.run(handler.sync()) == set()
    assert _events(sent) == [(member1, "link_created", None), (member1, "merged", IDS.for_master(SITI))]
    assert [t for t, _, _ in sent] == ["m", "u", "u", "f"]
    assert other.change_positions() == {("pop", 0): 2}
    assert handler.ready([0, 1])
    sent.clear()
    assert asyncio.run(handler.sync()) == set() and sent == []  # in sync: nothing again
    # A later change reaches both files in the same batch.
    asyncio.run(handler.handle([_msg(0, 2, population_change("died", "c-died", AHMAD, "Ahmad Fauzi", status="dead"))]))
    assert sorted(k for k, e, _ in _events(sent)) == [f"{FAMS[0]}-01", f"{FAMS[1]}-01"]
    assert files[0].change_positions() == other.change_positions() == {("pop", 0): 3}


def test_a_file_ahead_of_the_engine_is_left_alone_until_the_reader_passes_it(tmp_path: Path) -> None:
    fake = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK)])
    ahead = _file(tmp_path, 2, fake)
    # Its previous owner applied changes 0-1 of pop[0] (Budi's birth among them) to it already.
    ahead.apply_changes({}, {("pop", 0): 2})
    files = {0: _file(tmp_path, 0, fake), 2: ahead}
    handler, sent = _handler(tmp_path, files, fake)
    assert asyncio.run(handler.sync()) == {2}
    assert handler.blocked == {2} and not handler.ready([2]) and handler.ready([0])
    # The reader reads change 0 (Budi, whose member lives in the ahead file): only file 0 is searched.
    asyncio.run(handler.handle([_born(0, 0, 2)]))
    assert _events(sent) == [] and ahead.change_positions() == {("pop", 0): 2}
    assert handler.status(2) is FileStatus.AHEAD
    # Changes 1 and 2: the engine passes the file; only change 2 is new to it (caught up at the next sync).
    asyncio.run(handler.handle([_born(0, 1, 1), _born(0, 2, 0)]))
    member0 = f"{FAMS[0]}-02"
    assert _events(sent) == [(member0, "link_created", None), (member0, "merged", IDS.for_master(RIZKY))]
    assert handler.status(2) is FileStatus.BEHIND
    sent.clear()
    assert asyncio.run(handler.sync()) == set()
    # Change 2 (Rizky) touches nobody in file 2; Budi's birth (change 0) is not replayed into it.
    assert sent == [] and ahead.change_positions() == {("pop", 0): 3} and handler.ready([0, 2])
    handler.forget([2])
    assert handler.status(2) is None and handler.blocked == set()
