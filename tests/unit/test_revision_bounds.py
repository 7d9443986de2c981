"""Every revision the contract accepts fits every store it reaches; every other one is refused at the edge.

A table of boundary values is driven from the contract through the link store (family revisions), the
member states (master updates), the publisher's delivery state and its disclosure log, each read back
from its file after a reopen. The stores hold 64-bit values, beyond the contract's bound.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from contracts.dead_letter import DeadLetterReason
from contracts.decode import ContractViolation, decode_family_submission
from contracts.submission import MAX_REVISION, FamilySubmission
from contracts.topics import LINKED_MEMBERS
from integration.ids import PersonIds
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.linker.admission import AdmissionRules
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import FamilyState, LinkStore, StoreUpdate
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch
from tests.support.publisher import EXAMPLE_SECRETS, example_registry

ACCEPTED = [1, 2, 2**15, 2**31 - 2, MAX_REVISION]
REFUSED = [0, -1, MAX_REVISION + 1, 2**31, 2**32, 2**63, 10**30]
NIK = nik_for(2)
T = 1_709_251_200_000  # 2024-03-01, a record time inside the example subscriptions' validity


def _raw(revision: int) -> bytes:
    doc = submission_payload([member_payload(1, "Ahmad Fauzi", NIK)], revision=revision)
    return json.dumps(doc).encode()


def _decode(revision: int) -> FamilySubmission:
    return decode_family_submission(_raw(revision), key=FAMILY_KEY.encode())


def test_the_contract_bound_is_the_largest_signed_32_bit_integer() -> None:
    assert MAX_REVISION == 2**31 - 1


@pytest.mark.parametrize("revision", REFUSED)
def test_revisions_outside_the_contract_are_refused(revision: int) -> None:
    with pytest.raises(ContractViolation) as info:
        _decode(revision)
    assert info.value.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert [e.location for e in info.value.errors] == ["revision"]


@pytest.mark.parametrize("revision", ACCEPTED)
def test_an_accepted_revision_round_trips_through_every_store(tmp_path: Path, revision: int) -> None:
    sub = _decode(revision)
    assert sub.revision == revision
    # Link store and member states: the first revision of a family may be anything here (no step rule).
    fake = FakeMemberLinker.of([FakeMasterPerson(NIK, "Ahmad Fauzi", "3603121705150003")])

    def linker_on() -> SubmissionLinker:
        return SubmissionLinker(
            fake, PersonIds(b"k"), OutputTopics("m", "f", "r"), rules=AdmissionRules(max_step=MAX_REVISION)
        )

    store = LinkStore(tmp_path / "links.duckdb")
    result = link_batch(linker_on(), store, [sub], ["team-a"])
    assert result.families_linked == 1
    store.apply(result.update)
    store.close()
    store = LinkStore(tmp_path / "links.duckdb")  # reopened: what was written is read back
    pipeline = linker_on()
    assert store.families([FAMILY_KEY])[FAMILY_KEY].revision == revision
    assert [m.revision for m in store.find_family_members([FAMILY_KEY])] == [revision]
    # The same revision again is a re-delivery (processed), the one below it is stale.
    assert link_batch(pipeline, store, [sub], ["team-a"]).families_linked == 1
    if revision > 1:
        assert link_batch(pipeline, store, [_decode(revision - 1)], ["team-a"]).stale == 1
    store.close()

    # Publisher: the member record the linker wrote -> notifications, delivery state and disclosure log.
    member = next(r for r in result.records if r.topic == "m")
    assert member.key is not None and member.value is not None
    log = DisclosureLog(tmp_path / "disclosures.sqlite")
    now = datetime(2024, 3, 1, tzinfo=UTC)
    publisher = Publisher(example_registry(), KeyRing(EXAMPLE_SECRETS), log, clock=lambda: now)
    sent = publisher.handle(KafkaRecord(LINKED_MEMBERS, 0, 1, member.key, member.value, T))
    assert sent
    publisher.confirm(sent)
    assert log.count() == len(sent)
    with sqlite3.connect(log.path) as db:
        stored = db.execute("SELECT DISTINCT revision, typeof(revision) FROM delivery_state").fetchall()
    assert stored == [(revision, "integer")]


@pytest.mark.parametrize("revision", [2**31, 2**40, 2**63 - 1])
def test_the_link_store_holds_64_bit_revisions(tmp_path: Path, revision: int) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    store.apply(StoreUpdate(families={FAMILY_KEY: FamilyState(revision, "s", (1, 99), "team-a")}))
    store.close()
    assert LinkStore(tmp_path / "links.duckdb").families([FAMILY_KEY])[FAMILY_KEY] == FamilyState(
        revision, "s", (1, 99), "team-a"
    )


def test_a_file_with_32_bit_revisions_is_widened_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "links.duckdb"
    con = duckdb.connect(str(path))  # the schema before revisions were 64-bit and owners were kept
    con.execute(
        "CREATE TABLE family_revisions (family_key VARCHAR PRIMARY KEY, revision INTEGER NOT NULL, "
        "submission_id VARCHAR NOT NULL, serials INTEGER[] NOT NULL)"
    )
    con.execute("INSERT INTO family_revisions VALUES (?, 7, 's7', [1, 2])", [FAMILY_KEY])
    con.execute(
        "CREATE TABLE member_links (member_key VARCHAR NOT NULL, family_key VARCHAR NOT NULL, "
        "revision INTEGER NOT NULL)"
    )
    con.close()
    store = LinkStore(path)
    assert store.families([FAMILY_KEY])[FAMILY_KEY] == FamilyState(7, "s7", (1, 2), None)
    store.apply(StoreUpdate(families={FAMILY_KEY: FamilyState(2**40, "s8", (1,), "team-a")}))
    store.close()
    con = duckdb.connect(str(path))
    types = con.execute(
        "SELECT table_name, data_type FROM information_schema.columns "
        "WHERE column_name = 'revision' ORDER BY table_name"
    ).fetchall()
    con.close()
    assert types == [("family_revisions", "BIGINT"), ("member_links", "BIGINT")]
    assert LinkStore(path).families([FAMILY_KEY])[FAMILY_KEY] == FamilyState(2**40, "s8", (1,), "team-a")


def test_a_poisoned_output_record_is_skipped_by_the_publisher(tmp_path: Path) -> None:
    # A linkage.members.v1 record written before the bound (revision 10**30) crash-looped the publisher
    # (SQLite INTEGER overflow); the output contract now refuses it, so it is counted and skipped.
    from contracts.linkage_outputs import to_canonical_json
    from tests.support.publisher import linked_member

    log = DisclosureLog(tmp_path / "disclosures.sqlite")
    publisher = Publisher(
        example_registry(), KeyRing(EXAMPLE_SECRETS), log, clock=lambda: datetime(2024, 3, 1, tzinfo=UTC)
    )
    good = linked_member(1, nik=NIK)
    poisoned = json.loads(to_canonical_json(good))
    poisoned["revision"] = 10**30
    key = good.member_key.encode()
    assert publisher.handle(KafkaRecord(LINKED_MEMBERS, 0, 1, key, json.dumps(poisoned).encode(), T)) == []
    assert publisher.stats.undecodable == 1
    sent = publisher.handle(KafkaRecord(LINKED_MEMBERS, 0, 2, key, to_canonical_json(good), T))
    publisher.confirm(sent)
    assert sent and log.count() == len(sent)


def test_the_largest_member_numbers_reach_the_member_states(tmp_path: Path) -> None:
    # Serial 99, age 130, the oldest birth year and the largest relationship code the contract allows.
    member = dict(member_payload(99, "Ahmad Fauzi", None, relationship=8, birth=(1, 1, 1880)), age=130)
    doc = submission_payload([member], revision=MAX_REVISION)
    sub = decode_family_submission(json.dumps(doc).encode(), key=FAMILY_KEY.encode())
    store = LinkStore(tmp_path / "links.duckdb")
    pipeline = SubmissionLinker(
        FakeMemberLinker.of([]),
        PersonIds(b"k"),
        OutputTopics("m", "f", "r"),
        rules=AdmissionRules(max_step=MAX_REVISION),
    )
    store.apply(link_batch(pipeline, store, [sub]).update)
    store.close()
    (state,) = LinkStore(tmp_path / "links.duckdb").find_family_members([FAMILY_KEY])
    assert (state.member_key, state.revision, state.query.age, state.query.birth_year, state.query.relationship) == (
        f"{FAMILY_KEY}-99",
        MAX_REVISION,
        130,
        1880,
        8,
    )
