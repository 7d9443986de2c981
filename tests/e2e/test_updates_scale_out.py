"""Master updates with two linker instances in one group (real broker; fake engine over a small master,
and a shorter variant with the REAL engine on the e2e world at the end).

Two `python -m services.linker` processes share the link-store folder, each with its own state folder
(and so its own journal). Four families, one per partition of the 4-partition submissions topic. Every
instance reads every change record and re-links the members of the files it owns:

1. `born` and `died` records reach the members of all four partitions, two owned by each instance;
   a bad change record is dead-lettered by both, byte-identically;
2. instance A is frozen (SIGSTOP): a change reaches only B's files; A is killed, B takes A's files
   over and catches them up from its journal; a later change reaches all four files through B alone;
3. B stops; a submission and more changes arrive while nobody runs; A restarts with its old journal
   (older than the files it gets back): the submission waits until A's reader has passed the files'
   positions (else it would be linked against the older master), and the files get exactly the new
   changes.

The expected records come from the same pipeline and applier run in-process on one link store, in the
same order. Each member must end with exactly the expected update events (keys, event types, person
ids, byte-identical values) and member and family records.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from contracts.linkage_outputs import LinkedMember, MemberDecision
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.partitioning import partition_for, producer_partitioner
from contracts.topics import POPULATION_CHANGES, UPDATES
from integration.ids import PersonIds
from services.kafka.io import compacted_state, read_topic, values_by_key
from services.kafka.record import KafkaRecord
from services.linker.settings import DEV_PERSON_ID_KEY
from tests.support.broker import RunningBroker
from tests.support.e2e import E2EWorld, private_change_topics, private_topics
from tests.support.linker import FakeMasterPerson, FakeMemberLinker, member_payload, nik_for, submission_payload
from tests.support.linking import ReferenceRun
from tests.support.processes import until
from tests.support.updates import population_change
from tools.pipeline.linker_process import LinkerProcess, PipelineTopics, provision_private_topics
from tools.pipeline.outcome import wait_for_members

pytestmark = [pytest.mark.broker, pytest.mark.slow]

IDS = PersonIds(DEV_PERSON_ID_KEY.encode())
KK = "3603121705150003"
FAMS = [f"36030100010001000010{10 + p}" for p in range(4)]  # one family per partition
NEW_FAM = "3603010001000100002001"  # submitted in phase 3, on partition 0


@dataclasses.dataclass(frozen=True)
class Person:
    nik: str
    name: str
    yy: int  # birth year 19yy: a distinct year each, so the fake never pairs two of them by name sound

    def member(self, serial: int) -> dict[str, object]:
        return member_payload(serial, self.name, self.nik, birth=(15, 5, 1900 + self.yy))

    def change(self, change: str, change_id: str) -> bytes:
        status = "dead" if change == "died" else "alive"
        return population_change(change, change_id, self.nik, self.name, status=status)


def _person(serial: int, name: str) -> Person:
    yy = 40 + serial
    return Person(nik_for(serial, yy=yy), name, yy)


LINKED = [_person(1 + p, n) for p, n in enumerate(["Lukman Hakim", "Lestari Dewi", "Lina Marlina", "Lutfi Aziz"])]
BORN = [_person(5 + p, n) for p, n in enumerate(["Bambang Sutrisno", "Bayu Pratama", "Citra Ayu", "Dimas Arya"])]
SHARED = _person(9, "Kurniawan Adi")  # a member of every family (born in phase 2, then died)
LATE = [_person(10 + p, n) for p, n in enumerate(["Yanti Susanti", "Yusuf Maulana", "Wulan Sari", "Fajar Nugroho"])]
NEWCOMER = _person(14, "Zainal Arifin")  # born in phase 2, member of the family submitted in phase 3

C1 = [(f"c1-died-{p}", LINKED[p].change("died", f"c1-died-{p}")) for p in range(4)] + [
    (f"c1-born-{p}", BORN[p].change("born", f"c1-born-{p}")) for p in range(4)
]
C2 = [("c2-born-shared", SHARED.change("born", "c2-born-shared"))]
C2B = [
    ("c2b-died-shared", SHARED.change("died", "c2b-died-shared")),
    ("c2b-born-new", NEWCOMER.change("born", "c2b-born-new")),
]
C3 = [(f"c3-born-{p}", LATE[p].change("born", f"c3-born-{p}")) for p in range(4)]


def _submission(family_key: str, members: list[dict[str, object]]) -> bytes:
    return json.dumps(submission_payload(members, family_key=family_key, kk_number=KK)).encode()


SUBMISSIONS = [
    (FAMS[p], _submission(FAMS[p], [LINKED[p].member(1), BORN[p].member(2), SHARED.member(3), LATE[p].member(4)]))
    for p in range(4)
]
NEW_SUBMISSION = (NEW_FAM, _submission(NEW_FAM, [NEWCOMER.member(1)]))


class Reference(ReferenceRun):
    """The same pipeline and applier in-process on one link store, step by step (the fake engine)."""

    def __init__(self) -> None:
        super().__init__(FakeMemberLinker.of([FakeMasterPerson(p.nik, p.name, KK) for p in LINKED]), IDS)

    def submit(self, subs: list[tuple[str, bytes]]) -> None:
        self.link([(key.encode(), raw) for key, raw in subs], batch=1)

    def change(self, changes: list[tuple[str, bytes]]) -> None:  # type: ignore[override]
        super().change([value for _, value in changes], CHANGE_MS)


Event = tuple[str, str, str, str | None, str | None]


def _events(updates: dict[str, set[bytes]]) -> set[Event]:
    """(member key, event type, member's person id, old and new person id) of every update event."""
    out: set[Event] = set()
    for key, values in updates.items():
        for v in values:
            e = LINKAGE_UPDATE_ADAPTER.validate_json(v)
            out.add(
                (
                    key,
                    str(e.event),
                    e.member.person_id,
                    getattr(e, "old_person_id", None),
                    getattr(e, "new_person_id", None),
                )
            )
    return out


def _by_key(records: list[KafkaRecord]) -> dict[str, set[bytes]]:
    return {k: set(vs) for k, vs in values_by_key(records).items()}


#: The broker timestamp of the change records: the event time of the update events they cause, so the
#: in-process reference gives them the same one.
CHANGE_MS = 1_700_000_000_123


def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]], partition: Callable[[int], int]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for f in [
            producer.send(topic, key=k.encode(), value=v, partition=partition(i), timestamp_ms=CHANGE_MS)
            for i, (k, v) in enumerate(records)
        ]:
            f.get(timeout=30)
    finally:
        producer.close()


def _group_members(bootstrap: str, group: str) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (info,) = admin.describe_consumer_groups([group])
        return len(info.members) if info.state == "Stable" else None
    except KafkaError:  # e.g. the group's coordinator is not known yet
        return None
    finally:
        admin.close()


def _log(proc: LinkerProcess, since: int) -> str:
    with open(proc.log_path, "rb") as fh:
        fh.seek(since)
        return fh.read().decode(errors="replace")


CAUGHT_UP = re.compile(r"link-store file p(\d) caught up with this instance's master: (\d+) journalled")
RELINKED = re.compile(r"changes: (\d+) records, \d+ applied, (\d+) members re-linked in (\d+) files")


def _batches(proc: LinkerProcess, since: int) -> list[tuple[int, int, int]]:
    """(records, members re-linked, files) of every change batch the instance logged since `since`."""
    return [(int(r), int(n), int(f)) for r, n, f in RELINKED.findall(_log(proc, since))]


def test_every_instance_applies_every_change_to_the_files_it_owns_and_hands_them_over_caught_up(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag = f"us{uuid.uuid4().hex[:8]}"
    topics: PipelineTopics = provision_private_topics(bootstrap, tag)
    change_topics, updates_env = private_change_topics(bootstrap, tag)
    population, updates_topic = change_topics[POPULATION_CHANGES], change_topics[UPDATES]
    master = tmp_path / "master.json"
    master.write_text(json.dumps([dataclasses.asdict(FakeMasterPerson(p.nik, p.name, KK)) for p in LINKED]))
    env = {
        "REGSOSEK_LINKER_FAKE_MASTER_PATH": str(master),
        **updates_env,
    }
    shared = tmp_path / "link-store"

    def linker(name: str) -> LinkerProcess:
        return LinkerProcess(
            bootstrap=bootstrap,
            group=tag,
            state_dir=tmp_path / name / "state",
            topics=topics,
            link_store_dir=shared,
            log_path=tmp_path / f"{name}.log",
            extra_env=env,
            module="tests.support.fake_linker",
        )

    ref = Reference()
    a, b = linker("a"), linker("b")
    procs = [a, b]
    try:
        until("two members in the group", lambda: _group_members(bootstrap, tag) == 2, procs)
        _produce(bootstrap, topics.submissions, SUBMISSIONS, lambda i: i)  # family p -> partition p
        ref.submit(SUBMISSIONS)
        until(
            "members linked", lambda: compacted_state(read_topic(bootstrap, topics.members)) == ref.latest["m"], procs
        )

        def updates_done() -> bool:
            return _by_key(read_topic(bootstrap, updates_topic)) == ref.updates

        # Phase 1: both instances apply every change to their own files; a bad record is dead-lettered twice.
        marks = [a.log_size(), b.log_size()]
        _produce(bootstrap, population, [*C1[:4], ("bad-1", b"{broken"), *C1[4:]], lambda i: 0)
        ref.change(C1)
        until("phase 1 update events", updates_done, procs)
        expected: set[Event] = {
            (f"{FAMS[p]}-01", "person_died", IDS.for_master(LINKED[p].nik), None, None) for p in range(4)
        }
        for p in range(4):
            key, minted, master_id = f"{FAMS[p]}-02", IDS.mint(f"{FAMS[p]}-02"), IDS.for_master(BORN[p].nik)
            expected |= {(key, "link_created", master_id, None, None), (key, "merged", master_id, minted, master_id)}
        assert _events(ref.updates) == expected
        for proc, mark in zip(procs, marks, strict=True):  # each re-linked members of the 2 files it owns
            until("batch logged", lambda: sum(r for r, _, _ in _batches(proc, mark)) == len(C1) + 1, procs)  # noqa: B023
            batches = _batches(proc, mark)
            assert sum(n for _, n, _ in batches) > 0 and {f for _, _, f in batches} == {2}, _log(proc, mark)
        until(
            "dead letters", lambda: len([r for r in read_topic(bootstrap, topics.dlq) if r.key == b"bad-1"]) == 2, procs
        )
        dlq = [r for r in read_topic(bootstrap, topics.dlq) if r.key == b"bad-1"]
        assert len({r.value for r in dlq}) == 1
        dead = DEAD_LETTER_ADAPTER.validate_json(dlq[0].value or b"")
        assert (dead.reason, dead.source_topic, dead.payload) == (DeadLetterReason.NOT_JSON, population, b"{broken")

        # Phase 2: A frozen; the next change reaches B's files only. Which partitions are B's: those with events.
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        mark = b.log_size()
        _produce(bootstrap, population, C2, lambda i: 0)
        ref.change(C2)
        until("B applied the change", lambda: bool(_batches(b, mark)), [b])
        seen = {k[:22] for k, vs in _by_key(read_topic(bootstrap, updates_topic)).items() if k.endswith("-03")}
        b_parts = sorted(FAMS.index(f) for f in seen)
        a_parts = sorted(set(range(4)) - set(b_parts))
        assert len(b_parts) == 2, seen
        a.kill()  # its session ends; B takes A's files over, behind B's master by one change
        procs = [b]
        until("phase 2 update events", updates_done, procs)

        def caught_up() -> list[int]:
            found = re.findall(
                r"link-store file p(\d) caught up with this instance's master: (\d+) journalled", _log(b, mark)
            )
            return sorted(int(p) for p, n in found if int(n) > 0)

        # The line is logged once a file's outputs are acknowledged and its state saved: the events can be
        # on the topic a moment before the line of the last file caught up is written.
        until("the taken-over files caught up", lambda: len(caught_up()) >= len(a_parts), procs, timeout_s=30)
        assert caught_up() == a_parts, _log(b, mark)
        until("one member owns every partition", lambda: _group_members(bootstrap, tag) == 1, procs)
        mark = b.log_size()
        _produce(bootstrap, population, C2B, lambda i: 0)  # the survivor applies it to all four files
        ref.change(C2B)
        until("phase 2b update events", updates_done, procs)
        until("batch logged", lambda: sum(r for r, _, _ in _batches(b, mark)) == len(C2B), procs)
        assert {f for _, _, f in _batches(b, mark)} == {4}, _log(b, mark)
        shared_events = {e for e in _events(ref.updates) if e[0].endswith("-03")}
        assert {(k[:22], t) for k, t, *_ in shared_events} == {
            (f, t) for f in FAMS for t in ("link_created", "merged", "person_died")
        }

        # Phase 3: B stops; a submission and changes arrive while nobody runs; A comes back with its old journal.
        assert b.stop() == 0, b.log_tail()
        _produce(bootstrap, topics.submissions, [NEW_SUBMISSION], lambda i: 0)
        ref.submit([NEW_SUBMISSION])
        _produce(bootstrap, population, C3, lambda i: 0)
        ref.change(C3)
        a.restart()
        procs = [a]
        until("phase 3 update events", updates_done, procs)
        until("members", lambda: compacted_state(read_topic(bootstrap, topics.members)) == ref.latest["m"], procs)
        newcomer = LinkedMember.model_validate_json(ref.latest["m"][f"{NEW_FAM}-01"])
        assert (newcomer.decision, newcomer.person_id) == (MemberDecision.LINKED, IDS.for_master(NEWCOMER.nik))
        assert "are ahead of this instance's master" in _log(a, a.log_offset), a.log_tail()
        late = {e for e in _events(ref.updates) if e[0].endswith("-04")}
        assert {(k, t) for k, t, *_ in late} == {(f"{f}-04", t) for f in FAMS for t in ("link_created", "merged")}
        until("families", lambda: compacted_state(read_topic(bootstrap, topics.families)) == ref.latest["f"], procs)
        assert a.stop() == 0, a.log_tail()
    finally:
        for proc in (a, b):
            if proc.proc is not None and proc.alive():
                proc.proc.send_signal(signal.SIGCONT)
                proc.stop()


def _died(row: dict[str, Any], change_id: str) -> bytes:
    """A `died` PopulationChange for a master person of the generated world."""
    rec = {k: row[k] for k in ("nik", "kk_number", "full_name", "sex", "village_code", "district_code", "address")}
    rec.update({"birth_date": row["birth_date"].isoformat(), "status": "dead"})
    doc = {
        "schema_version": "1",
        "change": "died",
        "change_id": change_id,
        "effective_date": "2023-02-01",
        "record": rec,
    }
    return json.dumps(doc, sort_keys=True).encode()


def test_real_engine_two_instances_apply_deaths_to_every_partition_and_the_survivor_to_all(
    kafka_broker: RunningBroker, e2e_world: E2EWorld, tmp_path: Path
) -> None:
    """The same with the REAL engine on the e2e world: `died` records for linked members of all four
    partitions reach them through the instance owning each; after one instance stops, the survivor
    applies further deaths to all four files. Exact events, members and families as in-process."""
    bootstrap: str = kafka_broker.bootstrap
    topics, group = private_topics(bootstrap)
    change_topics, updates_env = private_change_topics(bootstrap, group)
    population, updates_topic = change_topics[POPULATION_CHANGES], change_topics[UPDATES]
    env = {
        **updates_env,
    }

    def linker(name: str) -> LinkerProcess:
        return LinkerProcess(
            bootstrap=bootstrap,
            group=group,
            state_dir=tmp_path / name / "state",
            topics=topics,
            world_dir=e2e_world.world,
            model_path=e2e_world.model,
            link_store_dir=tmp_path / "link-store",
            log_path=tmp_path / f"{name}.log",
            extra_env=env,
        )

    a, b = linker("a"), linker("b")
    procs = [a, b]
    # The reference, in-process, while the instances start: the same pipeline and applier, real engine.
    ref = ReferenceRun.from_files(e2e_world.world, e2e_world.model, e2e_world.world / "cache", IDS)
    records = e2e_world.submissions.records
    ref.link(records)
    latest, expected = ref.latest, ref.updates

    def partition(key: str) -> int:
        return partition_for(key.encode(), 4)

    # Deaths of linked members' master persons: three per partition (two now, one after the hand-over).
    rows = {r["nik"]: r for r in pq.read_table(e2e_world.world / "population.parquet").to_pylist()}
    nik_uses: dict[str, int] = defaultdict(int)
    linked: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, value in sorted(latest["m"].items()):
        m = LinkedMember.model_validate_json(value)
        if m.matched_nik:
            nik_uses[m.matched_nik] += 1
            linked[partition(m.family_key)].append((key, m.matched_nik))
    targets = {
        p: [(k, n) for k, n in linked[p] if nik_uses[n] == 1 and rows[n]["status"] == "alive"][:3] for p in range(4)
    }
    assert all(len(t) == 3 for t in targets.values()), {p: len(t) for p, t in targets.items()}
    c1 = [(f"d1-{p}-{i}", _died(rows[targets[p][i][1]], f"d1-{p}-{i}")) for p in range(4) for i in range(2)]
    c2 = [(f"d2-{p}", _died(rows[targets[p][2][1]], f"d2-{p}")) for p in range(4)]

    def apply(changes: list[tuple[str, bytes]]) -> None:
        ref.change([value for _, value in changes], CHANGE_MS)

    def updates_done() -> bool:
        return _by_key(read_topic(bootstrap, updates_topic)) == expected

    try:
        until("two members in the group", lambda: _group_members(bootstrap, group) == 2, procs, 120)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", partitioner=producer_partitioner)
        try:
            for f in [producer.send(topics.submissions, key=k, value=v) for k, v in records]:
                f.get(timeout=60)
        finally:
            producer.close()
        wait_for_members(
            bootstrap,
            topics.members,
            e2e_world.submissions.expected_member_keys(),
            timeout_s=120,
            consumed_by=(group, topics.submissions),
        )

        marks = [a.log_size(), b.log_size()]
        _produce(bootstrap, population, c1, lambda i: 0)
        apply(c1)
        until("deaths applied", updates_done, procs)
        died = {(k, str(LINKAGE_UPDATE_ADAPTER.validate_json(v).event)) for k, vs in expected.items() for v in vs}
        assert {(k, "person_died") for p in range(4) for k, _ in targets[p][:2]} <= died
        for proc, mark in zip(procs, marks, strict=True):
            until("batch logged", lambda: sum(r for r, _, _ in _batches(proc, mark)) == len(c1), procs)  # noqa: B023
            assert {f for _, _, f in _batches(proc, mark)} == {2}, _log(proc, mark)

        assert b.stop() == 0, b.log_tail()
        procs = [a]
        until("one member owns every partition", lambda: _group_members(bootstrap, group) == 1, procs)
        mark = a.log_size()
        _produce(bootstrap, population, c2, lambda i: 0)
        apply(c2)
        until("more deaths applied", updates_done, procs)
        until("batch logged", lambda: sum(r for r, _, _ in _batches(a, mark)) == len(c2), procs)
        assert {f for _, _, f in _batches(a, mark)} == {4}, _log(a, mark)
        died = {(k, str(LINKAGE_UPDATE_ADAPTER.validate_json(v).event)) for k, vs in expected.items() for v in vs}
        assert {(targets[p][2][0], "person_died") for p in range(4)} <= died
        until("members", lambda: compacted_state(read_topic(bootstrap, topics.members)) == latest["m"], procs)
        until("families", lambda: compacted_state(read_topic(bootstrap, topics.families)) == latest["f"], procs)
        assert a.stop() == 0, a.log_tail()
    finally:
        for proc in (a, b):
            proc.stop()
