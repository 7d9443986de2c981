"""Master updates through the REAL broker: the linker worker (fake engine over a generated world's master)
links a world's submissions, then applies population and sectoral changes and publishes link updates.

The expected records are computed in-process by the same pipeline and applier with the same fake
engine; the service must publish exactly those bytes under those keys. A full replay (new consumer
group, fresh state directory) of the same submissions and changes must publish them again, identical.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer

from contracts.codes import Presence
from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from contracts.decode import ContractViolation, decode_family_submission
from contracts.linkage_outputs import IntegratedFamily, LinkedMember, MemberDecision
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER, WelfareChanged
from contracts.submission import FamilySubmission
from contracts.topics import (
    BPJS_CHANGES,
    DTKS_CHANGES,
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    POPULATION_CHANGES,
    REVIEW,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    UPDATES,
    topic_spec,
)
from integration.ids import PersonIds
from services.kafka.io import compacted_state, read_topic, values_by_key
from services.kafka.record import KafkaRecord
from services.kafka.topics import provision
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import DEV_PERSON_ID_KEY
from services.linker.store import LinkStore
from services.linker.updates.applier import ChangeApplier, UpdateTopics
from services.linker.updates.changes import Change, classify_change
from services.linker.updates.handler import StoreMemberIndex
from synthetic import generate_world
from tests.support.broker import RunningBroker
from tests.support.linker import FakeMasterPerson, FakeMemberLinker
from tests.support.linking import link_batch
from tests.support.polling import records_until
from tests.support.updates import change_record, dtks_row
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
IDS = PersonIds(DEV_PERSON_ID_KEY.encode())
PRIVATE = (
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    LINKED_MEMBERS,
    LINKED_FAMILIES,
    REVIEW,
    POPULATION_CHANGES,
    DTKS_CHANGES,
    BPJS_CHANGES,
    UPDATES,
)  # the topics the test renames

#: The broker timestamp of the change records: the event time of the records they cause.
CHANGE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A generated world split into the initial master, the submissions and the changes."""

    master: list[FakeMasterPerson]
    submissions: list[FamilySubmission]
    raw: list[bytes]  # the submissions as generated (what is produced)
    changes: list[tuple[str, bytes]]  # (catalogue topic, value)
    targets: dict[str, str]  # what -> member key


def _linked_members(master: dict[str, FakeMasterPerson], subs: list[FamilySubmission]) -> list[tuple[str, str]]:
    """(member key, NIK) of members the fake auto-links, each NIK used by exactly one member."""
    uses: dict[str, list[str]] = defaultdict(list)
    for sub in subs:
        for m in sub.members:
            if m.nik:
                uses[m.nik].append(sub.member_key(m))
    out = []
    for sub in subs:
        for m in sorted(sub.members, key=lambda m: m.serial):
            person = master.get(m.nik or "")
            if person and person.full_name.casefold() == m.name.casefold() and len(uses[m.nik or ""]) == 1:
                out.append((sub.member_key(m), person.nik))
    return out


def _scenario(world_dir: Path) -> Scenario:
    generate_world(world_dir, persons=400, seed=11)
    rows = {r["nik"]: r for r in pq.read_table(world_dir / "population.parquet").to_pylist()}
    people = {n: FakeMasterPerson(n, r["full_name"], r["kk_number"], r["status"] == "dead") for n, r in rows.items()}
    subs, raw = [], []
    for line in (world_dir / "submissions.jsonl").read_bytes().splitlines():
        doc = json.loads(line)
        key = "".join(
            doc["family_key"][k]
            for k in (
                "province",
                "regency",
                "district",
                "village",
                "sls",
                "sub_sls",
                "building_serial",
                "family_serial",
            )
        )
        try:
            subs.append(decode_family_submission(line, key=key.encode()))
            raw.append(line)
        except ContractViolation:
            continue  # the world's deliberately invalid lines: the linker tests cover dead letters
    linked = _linked_members(people, subs)
    assert len(linked) >= 5, "the world has too few exactly-matching members for the scenario"
    (born_key, born), (died_key, died), (moved_key, moved), (corr_key, corr), (dtks_key, dtks) = linked[:5]
    master = [p for n, p in sorted(people.items()) if n != born]  # the born person is not in the master yet
    changes = [
        (POPULATION_CHANGES, change_record("born", "chg-born", rows[born])),
        (POPULATION_CHANGES, change_record("died", "chg-died", rows[died], status="dead")),
        (POPULATION_CHANGES, b"{broken"),
        (POPULATION_CHANGES, change_record("moved", "chg-moved", rows[moved], address="Jl. Baru No. 1")),
        (POPULATION_CHANGES, change_record("corrected", "chg-corr", rows[corr], full_name="Nama Dikoreksi Lain")),
        (DTKS_CHANGES, dtks_row("DTKS-NEW-1", dtks, "Someone")),
    ]
    targets = {"born": born_key, "died": died_key, "moved": moved_key, "corrected": corr_key, "dtks": dtks_key}
    return Scenario(master, subs, raw, changes, targets)


def _expected(sc: Scenario) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, list[bytes]]]:
    """Members and families topic states and update events per member key, computed in-process."""
    fake, store = FakeMemberLinker.of(sc.master), LinkStore(":memory:")
    pipeline = SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r"))
    state: dict[str, dict[str, bytes]] = {"m": {}, "f": {}}
    for sub in sc.submissions:
        result = link_batch(pipeline, store, [sub])
        store.apply(result.update)
        for rec in result.records:
            if rec.topic in state and rec.key is not None:
                if rec.value is None:
                    state[rec.topic].pop(rec.key.decode(), None)
                else:
                    state[rec.topic][rec.key.decode()] = rec.value
    index = StoreMemberIndex(lambda: {0: store})
    applier = ChangeApplier(fake, index, IDS, UpdateTopics("m", "r", "u", "f"))
    kinds = {POPULATION_CHANGES: "population", DTKS_CHANGES: "dtks"}
    changes = []
    for topic, value in sc.changes:
        kind = kinds[topic]
        c = classify_change(value, b"k", KafkaRecord(topic, 0, 0, None, None, CHANGE_MS), kind, max_bytes=1 << 20)  # type: ignore[arg-type]
        if isinstance(c, Change):
            changes.append(c)
    applied = applier.process(changes)
    updates: dict[str, list[bytes]] = defaultdict(list)
    for rec in applied.records:
        assert rec.key is not None and rec.value is not None
        if rec.topic in state:
            state[rec.topic][rec.key.decode()] = rec.value
        elif rec.topic == "u":
            updates[rec.key.decode()].append(rec.value)
    return state["m"], state["f"], dict(updates)


def _worker(bootstrap: str, topics: dict[str, str], state: Path, master_file: Path, group: str) -> LinkerProcess:
    """The linker (fake engine) with master updates on, on the test's private topics."""
    env = {"REGSOSEK_LINKER_UPDATES_ENABLED": "true", "REGSOSEK_LINKER_UPDATES_CATCHUP_SECONDS": "60"}
    return LinkerProcess(
        bootstrap=bootstrap,
        group=group,
        state_dir=state,
        topics=topics,
        fake_master=master_file,
        extra_env=env,
        log_path=state.parent / f"{group}.log",
    )


def test_changes_relink_members_publish_updates_and_replay_identically(
    kafka_broker: RunningBroker, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    topics = {src: f"u{tag}.{src}" for src in PRIVATE}
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(s), name=d) for s, d in topics.items()]).differences
    sc = _scenario(tmp_path / "world")
    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in sc.master]))
    expected_members, expected_families, expected_updates = _expected(sc)
    n_events = sum(len(v) for v in expected_updates.values())

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for f in [
            producer.send(topics[SUBMISSIONS], key=s.kafka_key, value=line)
            for s, line in zip(sc.submissions, sc.raw, strict=True)
        ]:
            f.get(timeout=30)
        worker = _worker(bootstrap, topics, tmp_path / "a" / "state", master_file, f"upd-{tag}-a")
        workers.append(worker)
        n_members = len({s.member_key(m) for s in sc.submissions for m in s.members})
        records_until(bootstrap, topics[LINKED_MEMBERS], lambda rs: len(compacted_state(rs)) >= n_members, worker, 120)
        # One change partition: the changes keep their order (the in-process expectation applies them so).
        for f in [
            producer.send(topics[t], key=f"ref-{i}".encode(), value=v, partition=0, timestamp_ms=CHANGE_MS)
            for i, (t, v) in enumerate(sc.changes)
        ]:
            f.get(timeout=30)
    finally:
        producer.close()

    updates = records_until(bootstrap, topics[UPDATES], lambda rs: len(rs) >= n_events, worker, 120)
    assert values_by_key(updates) == expected_updates
    members = records_until(
        bootstrap, topics[LINKED_MEMBERS], lambda rs: compacted_state(rs) == expected_members, worker, 60
    )
    records_until(bootstrap, topics[LINKED_FAMILIES], lambda rs: compacted_state(rs) == expected_families, worker, 60)
    dlq = read_topic(bootstrap, topics[SUBMISSIONS_DLQ])
    (dead,) = [DEAD_LETTER_ADAPTER.validate_json(r.value or b"") for r in dlq]
    assert (dead.reason, dead.source_topic, dead.payload) == (
        DeadLetterReason.NOT_JSON,
        topics[POPULATION_CHANGES],
        b"{broken",
    )

    # The scenario's consequences, spelled out.
    t = sc.targets
    events = {k: [LINKAGE_UPDATE_ADAPTER.validate_json(v) for v in vs] for k, vs in values_by_key(updates).items()}
    created, merged = events[t["born"]]
    assert (created.event, merged.event) == ("link_created", "merged")
    assert merged.old_person_id == IDS.mint(t["born"]) and merged.new_person_id.startswith("p-")  # type: ignore[union-attr]
    born_member = LinkedMember.model_validate_json(compacted_state(members)[t["born"]])
    assert (born_member.decision, born_member.person_id) == (MemberDecision.LINKED, merged.new_person_id)  # type: ignore[union-attr]
    assert [e.event for e in events[t["died"]]] == ["person_died"]
    families = compacted_state(read_topic(bootstrap, topics[LINKED_FAMILIES]))
    died_family = IntegratedFamily.model_validate_json(families[t["died"][:22]])
    present = {
        s.member_key(m): m.presence in (Presence.LIVES_HERE, Presence.NEW_MEMBER)
        for s in sc.submissions
        for m in s.members
    }
    assert (int(t["died"][-2:]) in died_family.deceased_in_master_serials) == present[t["died"]]
    assert [e.event for e in events[t["moved"]]] == ["moved"]
    assert [e.event for e in events[t["corrected"]]] == ["split"]
    assert [(e.event, e.member.sectoral.dtks_id) for e in events[t["dtks"]]] == [
        ("link_changed", "DTKS-NEW-1"),
        ("welfare_changed", "DTKS-NEW-1"),
    ]
    welfare = events[t["dtks"]][1]
    assert isinstance(welfare, WelfareChanged)  # the DTKS row's decile (desil 2) now reaches the member
    assert (welfare.decile_after, welfare.member.sectoral.dtks_decile) == (2, 2) and welfare.decile_before != 2
    assert workers[0].stop() == 0

    # Full replay: new group, fresh state, same topics -> the same update events and person ids again.
    replay = _worker(bootstrap, topics, tmp_path / "b" / "state", master_file, f"upd-{tag}-b")
    workers.append(replay)
    again = records_until(bootstrap, topics[UPDATES], lambda rs: len(rs) >= 2 * n_events, replay, 120)
    assert {k: vs[len(vs) // 2 :] for k, vs in values_by_key(again).items()} == expected_updates
    assert {k: vs[: len(vs) // 2] for k, vs in values_by_key(again).items()} == expected_updates
    assert compacted_state(read_topic(bootstrap, topics[LINKED_MEMBERS])) == expected_members
    assert compacted_state(read_topic(bootstrap, topics[LINKED_FAMILIES])) == expected_families
    assert replay.stop() == 0

    # Restart of the first instance (same group and state): its engine reloads the master without the
    # born person, and the journal puts it back, so a new revision of that family links the member.
    born_family = t["born"][:22]
    (line,) = [
        ln
        for s, ln in zip(sc.submissions, sc.raw, strict=True)
        if s.family_key.key == born_family
        and s.revision == max(x.revision for x in sc.submissions if x.family_key.key == born_family)
    ]
    doc = json.loads(line)
    revision = doc["revision"] + 1
    doc.update(revision=revision, submission_id=f"{doc['submission_id']}-r{revision}")
    restarted = _worker(bootstrap, topics, tmp_path / "a" / "state", master_file, f"upd-{tag}-a")
    workers.append(restarted)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topics[SUBMISSIONS], key=born_family.encode(), value=json.dumps(doc).encode()).get(timeout=30)
    finally:
        producer.close()

    def revised(records: list[KafkaRecord]) -> bool:
        value = compacted_state(records).get(t["born"])
        return value is not None and LinkedMember.model_validate_json(value).revision == revision

    latest = compacted_state(records_until(bootstrap, topics[LINKED_MEMBERS], revised, restarted, 120))
    relinked = LinkedMember.model_validate_json(latest[t["born"]])
    # (the fake master file lacks the born person: without the journal this member would not be linked)
    assert (relinked.decision, relinked.person_id) == (MemberDecision.LINKED, born_member.person_id)
