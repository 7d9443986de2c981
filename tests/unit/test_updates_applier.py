"""The change applier with the fake engine: master upserts re-link the affected members, exact events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from contracts.decode import decode_family_submission
from contracts.linkage_outputs import (
    IntegratedFamily,
    LinkedMember,
    MemberDecision,
    PersonIdKind,
    ReviewTask,
    to_canonical_json,
)
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER, UpdateEventType, update_event_id
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from integration.outputs import rebuilt_family
from services.kafka.record import KafkaRecord
from services.linker.member_state import Probe
from services.linker.pipeline import OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.linker.updates.applier import ChangeApplier, UpdateResult, UpdateTopics
from services.linker.updates.changes import Change, classify_change
from services.linker.updates.handler import StoreMemberIndex
from tests.support.linker import FakeMasterPerson, FakeMemberLinker, member_payload, nik_for, submission_payload
from tests.support.linking import link_batch
from tests.support.updates import dtks_row, population_change

IDS = PersonIds(b"test-key")
KK = "3603121705150003"
FAM = "3603010001000100001001"
AHMAD, SITI, RIZKY = nik_for(11), nik_for(12, female=True), nik_for(13, yy=15)
TOPICS = UpdateTopics(members="m", review="r", updates="u", families="f")


def _world(store: LinkStore) -> FakeMemberLinker:
    """Ahmad linked, Siti linked, Rizky (a child not yet in the master) not linked."""
    fake = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK), FakeMasterPerson(SITI, "Siti Aminah", KK)])
    members = [
        member_payload(1, "Ahmad Fauzi", AHMAD),
        member_payload(2, "Siti Aminah", SITI, sex=2, relationship=2),
        member_payload(3, "Rizky Pratama", RIZKY, relationship=3, birth=(15, 5, 2015)),
    ]
    sub: FamilySubmission = decode_family_submission(
        json.dumps(submission_payload(members, family_key=FAM, kk_number=KK)).encode(), key=FAM.encode()
    )
    pipeline = SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r"))
    store.apply(link_batch(pipeline, store, [sub]).update)
    return fake


def _change(value: bytes, topic_kind: str = "population") -> Change:
    change = classify_change(value, b"ref", KafkaRecord("t", 0, 0, None, None, 0), topic_kind, max_bytes=10_000)  # type: ignore[arg-type]
    assert isinstance(change, Change)
    return change


def _apply(store: LinkStore, fake: FakeMemberLinker, *values: bytes) -> UpdateResult:
    index = StoreMemberIndex(lambda: {0: store})
    result = ChangeApplier(fake, index, IDS, TOPICS).process([_change(v) for v in values])
    index.save(result.states.values())
    return result


def _by_topic(records: list[OutboundRecord], topic: str) -> list[OutboundRecord]:
    return [r for r in records if r.topic == topic]


@pytest.fixture()
def store(tmp_path: Path) -> LinkStore:
    return LinkStore(tmp_path / "links.duckdb")


def test_born_links_an_unlinked_member_and_merges_its_minted_id(store: LinkStore) -> None:
    fake = _world(store)
    result = _apply(store, fake, population_change("born", "c-born-1", RIZKY, "Rizky Pratama", kk_number=KK))
    key = f"{FAM}-03"
    (member_rec,) = _by_topic(result.records, "m")
    member = LinkedMember.model_validate_json(member_rec.value or b"")
    assert (member_rec.key, member.decision, member.matched_nik) == (key.encode(), MemberDecision.LINKED, RIZKY)
    assert (member.person_id, member.person_id_kind) == (IDS.for_master(RIZKY), PersonIdKind.MASTER)
    created, merged = (LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(result.records, "u"))
    assert (created.event, merged.event) == ("link_created", "merged")
    assert merged.old_person_id == IDS.mint(key) and merged.new_person_id == IDS.for_master(RIZKY)  # type: ignore[union-attr]
    assert merged.event_id == update_event_id("c-born-1", key, UpdateEventType.MERGED)
    assert (merged.before.decision, merged.after.decision) == (MemberDecision.NOT_LINKED, MemberDecision.LINKED)
    assert merged.cause.change == "born" and merged.member == member
    assert (result.changes, result.relinked, result.events) == (1, 1, 2)
    (family_rec,) = _by_topic(result.records, "f")
    family = IntegratedFamily.model_validate_json(family_rec.value or b"")
    assert (family.flags.members_not_in_master, family.not_in_master_serials) == (False, [])
    assert [(r.serial, r.person_id) for r in family.members][2] == (3, IDS.for_master(RIZKY))
    # The store now knows the member as linked to the new NIK: a later death reaches it.
    (state,) = StoreMemberIndex(lambda: {0: store}).find(Probe(niks=frozenset({RIZKY})))
    assert (state.decision, state.link_nik) == ("linked", RIZKY)


def test_died_and_moved_give_person_events_for_the_linked_members_only(store: LinkStore) -> None:
    fake = _world(store)
    result = _apply(
        store,
        fake,
        population_change("died", "c-died-1", AHMAD, "Ahmad Fauzi", kk_number=KK, status="dead"),
        population_change("moved", "c-moved-1", SITI, "Siti Aminah", sex="F", kk_number=KK, village_code="3603122002"),
    )
    assert _by_topic(result.records, "m") == []  # the member records do not change
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(result.records, "u")]
    assert [(e.event, e.member_key, e.cause.change_id) for e in events] == [
        ("person_died", f"{FAM}-01", "c-died-1"),
        ("moved", f"{FAM}-02", "c-moved-1"),
    ]
    assert events[0].before == events[0].after and events[0].after.person_id == IDS.for_master(AHMAD)
    assert fake.master[AHMAD].deceased is True
    (family_rec,) = _by_topic(result.records, "f")  # the family now has a member dead in the master
    family = IntegratedFamily.model_validate_json(family_rec.value or b"")
    assert (family.flags.deceased_in_master_present_in_survey, family.deceased_in_master_serials) == (True, [1])


def test_corrected_name_breaks_the_link_into_a_split_and_a_review_task(store: LinkStore) -> None:
    fake = _world(store)
    result = _apply(store, fake, population_change("corrected", "c-corr-1", AHMAD, "Achmad Fauzy", kk_number=KK))
    key = f"{FAM}-01"
    (split,) = (LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(result.records, "u"))
    assert split.event == "split"
    assert (split.old_person_id, split.new_person_id) == (IDS.for_master(AHMAD), IDS.mint(key))
    assert split.after.decision is MemberDecision.PENDING_REVIEW and split.member.matched_nik is None
    (task_rec,) = _by_topic(result.records, "r")
    task = ReviewTask.model_validate_json(task_rec.value or b"")
    assert (task.task_id, task.candidate_nik) == (f"{key}/r1/c-corr-1", AHMAD)
    # Correcting it back re-links: link_created + merged to the same master id as before.
    back = _apply(store, fake, population_change("corrected", "c-corr-2", AHMAD, "Ahmad Fauzi", kk_number=KK))
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(back.records, "u")]
    assert [e.event for e in events] == ["link_created", "merged"]
    assert events[1].after.person_id == IDS.for_master(AHMAD)


def test_sectoral_row_changes_the_linked_members_sectoral_ids(store: LinkStore) -> None:
    fake = _world(store)
    index = StoreMemberIndex(lambda: {0: store})
    result = ChangeApplier(fake, index, IDS, TOPICS).process([_change(dtks_row("DTKS-77", SITI, "Siti"), "dtks")])
    (member_rec,) = _by_topic(result.records, "m")
    sectoral = LinkedMember.model_validate_json(member_rec.value or b"").sectoral
    assert (sectoral.dtks_id, sectoral.dtks_decile) == ("DTKS-77", 2)
    # Entering DTKS changes the link (sectoral id) and the welfare decile (unknown -> 2).
    event, welfare = (LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(result.records, "u"))
    assert (event.event, event.member_key, event.cause.source) == ("link_changed", f"{FAM}-02", "dtks")
    assert welfare.event == "welfare_changed" and welfare.member_key == f"{FAM}-02"
    assert _by_topic(result.records, "f") == []  # sectoral ids are not part of the family record
    # A row without a NIK touches nobody.
    nobody = ChangeApplier(fake, index, IDS, TOPICS).process([_change(dtks_row("DTKS-78", None, "X"), "dtks")])
    assert (nobody.records, nobody.relinked) == ([], 0)


def test_a_change_touching_nobody_yields_nothing(store: LinkStore) -> None:
    fake = _world(store)
    other = nik_for(99, day=3, month=2, yy=70)
    result = _apply(store, fake, population_change("born", "c-x", other, "Zainal Abidin", kk_number=KK))
    assert result.records == [] and result.changes == 1
    assert other in fake.master  # applied to the master all the same


def test_same_changes_on_fresh_state_give_identical_bytes(tmp_path: Path) -> None:
    changes = [
        population_change("born", "c1", RIZKY, "Rizky Pratama", kk_number=KK),
        population_change("corrected", "c2", AHMAD, "Achmad Fauzy", kk_number=KK),
        population_change("died", "c3", SITI, "Siti Aminah", sex="F", kk_number=KK, status="dead"),
    ]
    runs = []
    for run in range(2):
        store = LinkStore(tmp_path / f"run{run}.duckdb")
        runs.append(_apply(store, _world(store), *changes).records)
    assert runs[0] == runs[1]
    # born: member + link_created + merged; corrected: member + review task + split; died: person_died
    assert [r.topic for r in runs[0]] == ["m", "u", "u", "m", "r", "u", "u", "f"]
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"").event for r in runs[0] if r.topic == "u"]
    assert events == ["link_created", "merged", "split", "person_died"]


def test_a_newer_revision_drops_the_removed_members_state(store: LinkStore) -> None:
    fake = _world(store)
    sub = decode_family_submission(
        json.dumps(
            submission_payload([member_payload(1, "Ahmad Fauzi", AHMAD)], family_key=FAM, revision=2, kk_number=KK)
        ).encode(),
        key=FAM.encode(),
    )
    store.apply(link_batch(SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r")), store, [sub]).update)
    result = _apply(store, fake, population_change("born", "c-born-1", RIZKY, "Rizky Pratama", kk_number=KK))
    assert result.records == []  # Rizky left the family in revision 2: nothing to re-link


def test_a_rebuilt_family_without_changes_is_byte_identical_to_the_linkers(store: LinkStore) -> None:
    _world(store)
    states = StoreMemberIndex(lambda: {0: store}).find_families([FAM])
    assert len(states) == 3
    original = states[0].family_json
    current = {s.member_key: s.current() for s in states}
    assert to_canonical_json(rebuilt_family(IntegratedFamily.model_validate_json(original), current)) == original


def test_kk_changed_tells_the_linked_member_and_flags_the_family_kk_mismatch(store: LinkStore) -> None:
    fake = _world(store)
    new_kk = "3603121705150099"
    result = _apply(store, fake, population_change("kk_changed", "c-kk-1", AHMAD, "Ahmad Fauzi", kk_number=new_kk))
    (event,) = (LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(result.records, "u"))
    assert (event.event, event.member_key, event.before, event.cause.change) == (
        "link_changed",
        f"{FAM}-01",
        event.after,
        "kk_changed",
    )
    (family_rec,) = _by_topic(result.records, "f")
    family = IntegratedFamily.model_validate_json(family_rec.value or b"")
    assert (family.flags.kk_mismatch, family.master_kk_numbers) == (True, [KK, new_kk])


def test_bpjs_row_sets_the_bpjs_id_of_the_linked_member(store: LinkStore) -> None:
    fake = _world(store)
    row = json.dumps(
        {
            "source": "bpjs",
            "schema_version": "1",
            "noka": "0000000000123",
            "nik": AHMAD,
            "nama_peserta": "Ahmad",
            "segmen": "PBI-APBN",
            "faskes": "F-1",
        }
    ).encode()
    result = ChangeApplier(fake, StoreMemberIndex(lambda: {0: store}), IDS, TOPICS).process([_change(row, "bpjs")])
    (member_rec,) = _by_topic(result.records, "m")
    assert LinkedMember.model_validate_json(member_rec.value or b"").sectoral.bpjs_id == "0000000000123"
    assert [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"").event for r in _by_topic(result.records, "u")] == [
        "link_changed"
    ]


# A child the master lacks, surveyed without a NIK, with another spelling and birth date than Dukcapil's.
NURHALIZA = nik_for(14, day=2, month=3, yy=16, female=True)  # born 2016-03-02


def _world_with_unregistered_child(store: LinkStore) -> FakeMemberLinker:
    """`_world` plus member 04, "Sitti Nurhalizah" (no NIK, born 2016-08-20 as surveyed), not linked."""
    fake = FakeMemberLinker.of([FakeMasterPerson(AHMAD, "Ahmad Fauzi", KK), FakeMasterPerson(SITI, "Siti Aminah", KK)])
    members = [
        member_payload(1, "Ahmad Fauzi", AHMAD),
        member_payload(2, "Siti Aminah", SITI, sex=2, relationship=2),
        member_payload(3, "Rizky Pratama", RIZKY, relationship=3, birth=(15, 5, 2015)),
        member_payload(4, "Sitti Nurhalizah", None, sex=2, relationship=3, birth=(20, 8, 2016)),
    ]
    sub = decode_family_submission(
        json.dumps(submission_payload(members, family_key=FAM, kk_number=KK)).encode(), key=FAM.encode()
    )
    store.apply(link_batch(SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r")), store, [sub]).update)
    return fake


def test_born_links_a_member_sharing_only_a_phonetic_blocking_key(store: LinkStore) -> None:
    fake = _world_with_unregistered_child(store)
    key = f"{FAM}-04"
    index = StoreMemberIndex(lambda: {0: store})
    (stored,) = [s for s in index.find_families([FAM]) if s.member_key == key]
    assert stored.decision == "not_linked" and stored.blocking_keys
    born = population_change("born", "c-born-4", NURHALIZA, "Siti Nurhaliza", sex="F", kk_number=KK)
    # The former probe (NIK, birth date, normalised name) does not reach her: no NIK, another date and spelling.
    old_probe = Probe(
        niks=frozenset({NURHALIZA}), birth_dates=frozenset({"2016-03-02"}), name_keys=frozenset({"siti nurhaliza"})
    )
    assert index.find(old_probe) == []
    result = _apply(store, fake, born)
    (member_rec,) = _by_topic(result.records, "m")
    member = LinkedMember.model_validate_json(member_rec.value or b"")
    assert (member_rec.key, member.decision, member.matched_nik) == (key.encode(), MemberDecision.LINKED, NURHALIZA)
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in _by_topic(result.records, "u")]
    assert [(e.event, e.member_key) for e in events] == [("link_created", key), ("merged", key)]
    assert (events[1].old_person_id, events[1].new_person_id) == (IDS.mint(key), IDS.for_master(NURHALIZA))  # type: ignore[union-attr]
    assert (result.relinked, result.events) == (1, 2)  # Rizky (another name, NIK) is not touched
    (family_rec,) = _by_topic(result.records, "f")
    family = IntegratedFamily.model_validate_json(family_rec.value or b"")
    assert [(r.serial, r.person_id) for r in family.members][3] == (4, IDS.for_master(NURHALIZA))
    # The same name born another year shares no key with her: nobody is re-linked.
    other = nik_for(15, day=2, month=3, yy=17, female=True)
    assert _apply(store, fake, population_change("born", "c-born-5", other, "Siti Nurhaliza", sex="F")).records == []


def test_link_store_files_without_blocking_keys_open_and_use_the_former_probe(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "links.duckdb"
    store = LinkStore(path)
    fake = _world_with_unregistered_child(store)
    store.close()
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE member_links DROP COLUMN block_keys")  # as written before the column existed
    con.close()
    store = LinkStore(path)
    index = StoreMemberIndex(lambda: {0: store})
    assert all(s.blocking_keys is None for s in index.find_families([FAM]))
    # Found by the birth date as surveyed (a correction of the master record to that date), re-linked by the
    # fake's sound key, and saved with its keys.
    corrected = population_change(
        "born", "c-born-6", NURHALIZA, "Siti Nurhaliza", sex="F", kk_number=KK, birth_date=dt.date(2016, 8, 20)
    )
    result = _apply(store, fake, corrected)
    assert [r.key for r in _by_topic(result.records, "u")] == [f"{FAM}-04".encode()] * 2
    (state,) = [s for s in index.find_families([FAM]) if s.member_key == f"{FAM}-04"]
    assert state.decision == "linked" and state.blocking_keys
    store.close()
