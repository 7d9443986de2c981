"""The publisher's decisions without Kafka: events, projection, deterministic ids, corrections, the log."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from contracts.linkage_outputs import to_canonical_json
from contracts.subscriptions import EventType, NotificationEnvelope, SubscriptionRegistry
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, UPDATES
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import Disclosure, DisclosureLog
from services.publisher.core import Notification, Publisher
from tests.support.publisher import (
    EXAMPLE_SECRETS,
    example_registry,
    example_subscriptions,
    integrated_family,
    linked_member,
)
from tests.support.updates import link_changed_update

NIK_1 = "3603121505800002"
NIK_2 = "3603125505850003"
NIK_3 = "3603120101900004"
T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class _Offsets:
    def __init__(self) -> None:
        self.next = 0

    def record(self, topic: str, key: str, value: BaseModel, ts: int = T0) -> KafkaRecord:
        self.next += 1
        return KafkaRecord(topic, 0, self.next, key.encode(), to_canonical_json(value), ts)


@pytest.fixture
def log(tmp_path: Path) -> DisclosureLog:
    return DisclosureLog(tmp_path / "disclosures.sqlite")


def _publisher(log: DisclosureLog, registry: SubscriptionRegistry | None = None) -> Publisher:
    return Publisher(registry or example_registry(), KeyRing(EXAMPLE_SECRETS), log, clock=lambda: NOW)


def _by_sub(sent: list[Notification]) -> dict[str, NotificationEnvelope]:
    return {n.envelope.subscriber_id: n.envelope for n in sent}


def test_person_notifications_are_projected_per_subscription(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    member = linked_member(1, nik=NIK_1, bpjs_id="0001234567890")
    sent = pub.handle(src.record(LINKED_MEMBERS, member.member_key, member))
    # kemendikbud gets families only; the other two get the person with exactly their fields.
    envelopes = _by_sub(sent)
    assert sorted(envelopes) == ["kemenkes", "kemensos"]
    sos, kes = envelopes["kemensos"], envelopes["kemenkes"]
    assert sos.event_type is kes.event_type is EventType.LINK_CREATED
    sos_family_ref = KeyRing(EXAMPLE_SECRETS).for_subscriber("kemensos").family(member.family_key)
    assert sos.record == {
        "nik": NIK_1,
        "family_key": sos_family_ref,
        "decision": "linked",
        "in_dtks": False,
        "dtks_id": None,
        "regency_code": "3603",
    }
    assert kes.record == {"decision": "linked", "in_bpjs": True, "bpjs_id": "0001234567890", "province_code": "36"}
    assert NIK_1 not in kes.model_dump_json()
    assert sos.reference_id != kes.reference_id  # unlinkable across subscribers
    assert [n.topic for n in sent] == [f"subscriber.{e.subscriber_id}.notifications.v1" for e in envelopes.values()]
    ring = KeyRing(EXAMPLE_SECRETS)
    assert [n.key for n in sent] == [
        ring.for_subscriber(n.envelope.subscriber_id).member(member.member_key) for n in sent
    ]
    assert sos.timestamp == datetime(2024, 3, 1, tzinfo=UTC)
    assert (sos.purpose_code, kes.purpose_code) == ("BANSOS-TARGETING", "PBI-JK-VERIFICATION")


def test_programme_filter_and_unlinked_member(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    member = linked_member(2, nik=None)
    sent = pub.handle(src.record(LINKED_MEMBERS, member.member_key, member))
    assert [(n.envelope.subscriber_id, n.envelope.event_type) for n in sent] == [("kemensos", EventType.PERSON_NEW)]
    assert sent[0].envelope.record["nik"] is None


def test_same_input_same_message_id_and_nothing_new_is_not_resent(tmp_path: Path) -> None:
    member = linked_member(1, nik=NIK_1, bpjs_id="0001234567890")
    rec = _Offsets().record(LINKED_MEMBERS, member.member_key, member)
    first = _publisher(DisclosureLog(tmp_path / "a.sqlite")).handle(rec)
    again = _publisher(DisclosureLog(tmp_path / "b.sqlite")).handle(rec)
    assert [n.envelope for n in first] == [n.envelope for n in again]
    # After delivery is confirmed, the same linkage output (e.g. a linker replay) sends nothing.
    log = DisclosureLog(tmp_path / "c.sqlite")
    pub = _publisher(log)
    pub.confirm(pub.handle(rec))
    replay = KafkaRecord(rec.topic, 0, 99, rec.key, rec.value, T0 + 5000)
    assert pub.handle(replay) == []
    assert pub.stats.unchanged == 2


def test_link_change_sends_a_correction_to_those_who_got_the_earlier_version(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    before = linked_member(1, nik=NIK_1, bpjs_id="0001234567890")
    # Not confirmed yet: the second record of the same poll batch must still see the first delivery.
    first = _by_sub(pub.handle(src.record(LINKED_MEMBERS, before.member_key, before)))
    # The member is re-linked to another master person (revision 2): a correction supersedes the first.
    after = linked_member(1, nik=NIK_2, revision=2, bpjs_id="0001234567891")
    second = _by_sub(pub.handle(src.record(LINKED_MEMBERS, after.member_key, after)))
    for sid in ("kemensos", "kemenkes"):
        assert second[sid].event_type is EventType.LINK_CHANGED
        assert second[sid].correction is True
        assert second[sid].supersedes == first[sid].message_id
        assert second[sid].reference_id != first[sid].reference_id
    assert second["kemensos"].record["nik"] == NIK_2


def test_a_replayed_older_revision_never_replaces_a_newer_one(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    old, new = linked_member(1, nik=NIK_1), linked_member(1, nik=NIK_2, revision=2)
    pub.confirm(pub.handle(src.record(LINKED_MEMBERS, old.member_key, old)))
    pub.confirm(pub.handle(src.record(LINKED_MEMBERS, new.member_key, new)))
    assert pub.handle(src.record(LINKED_MEMBERS, old.member_key, old)) == []
    fam_new, fam_old = integrated_family([new], revision=2), integrated_family([old])
    pub.confirm(pub.handle(src.record(LINKED_FAMILIES, fam_new.family_key, fam_new)))
    assert pub.handle(src.record(LINKED_FAMILIES, fam_old.family_key, fam_old)) == []


def test_correction_reaches_a_subscriber_without_link_changed_events(log: DisclosureLog) -> None:
    sos = example_subscriptions()[0].model_copy(update={"event_types": (EventType.LINK_CREATED,)})
    pub, src = _publisher(log, SubscriptionRegistry(subscriptions=(sos,))), _Offsets()
    before = linked_member(1, nik=NIK_1)
    pub.confirm(pub.handle(src.record(LINKED_MEMBERS, before.member_key, before)))
    # A master correction arrives on linkage.updates.v1: correction even though link_changed is not subscribed.
    corrected = linked_member(1, nik=NIK_1, dtks_id="D-9")
    (n,) = pub.handle(src.record(UPDATES, corrected.member_key, link_changed_update(before, corrected)))
    assert (n.envelope.event_type, n.envelope.correction) == (EventType.LINK_CHANGED, True)
    assert n.envelope.record["dtks_id"] == "D-9"
    # A brand-new person not linked (person_new) is not subscribed: nothing.
    other = linked_member(3, nik=None)
    assert pub.handle(src.record(LINKED_MEMBERS, other.member_key, other)) == []


def test_family_events_new_member_added_death_and_region_filter(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    m1, m2 = linked_member(1, nik=NIK_1), linked_member(2, nik=NIK_2)
    fam = integrated_family([m1])
    first = pub.handle(src.record(LINKED_FAMILIES, fam.family_key, fam))
    sent = _by_sub(first)
    assert {s: e.event_type for s, e in sent.items()} == {
        "kemensos": EventType.FAMILY_NEW,
        "kemendikbud": EventType.FAMILY_NEW,
    }
    assert set(sent["kemendikbud"].record) == {"regency_code", "member_count", "members"}
    assert pub.handle(src.record(LINKED_FAMILIES, fam.family_key, fam)) == []  # unchanged: nothing
    pub.confirm(first)
    grown = integrated_family([m1, m2], revision=2)
    added = _by_sub(pub.handle(src.record(LINKED_FAMILIES, grown.family_key, grown)))
    assert {e.event_type for e in added.values()} == {EventType.MEMBER_ADDED}
    assert added["kemendikbud"].record["member_count"] == 2
    died = integrated_family([m1, m2], revision=3, deceased=[2])
    death = _by_sub(pub.handle(src.record(LINKED_FAMILIES, died.family_key, died)))
    # kemendikbud did not subscribe to deaths and its projection shows no death field: nothing for it.
    assert {s: e.event_type for s, e in death.items()} == {"kemensos": EventType.DEATH}
    outside = integrated_family([linked_member(1, nik=NIK_3, family_key="3201010001000100001001")])
    assert sorted(_by_sub(pub.handle(src.record(LINKED_FAMILIES, outside.family_key, outside)))) == ["kemensos"]


def test_validity_window_uses_the_record_time(log: DisclosureLog) -> None:
    sos = example_subscriptions()[0].model_copy(
        update={"valid_from": datetime(2024, 1, 1, tzinfo=UTC), "valid_until": datetime(2025, 1, 1, tzinfo=UTC)}
    )
    pub, src = _publisher(log, SubscriptionRegistry(subscriptions=(sos,))), _Offsets()
    member = linked_member(1, nik=NIK_1)
    late = int((datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=1)).timestamp() * 1000)
    assert pub.handle(src.record(LINKED_MEMBERS, member.member_key, member, ts=late)) == []
    assert len(pub.handle(src.record(LINKED_MEMBERS, member.member_key, member))) == 1


def test_undecodable_and_tombstones_are_counted_not_echoed(log: DisclosureLog) -> None:
    pub = _publisher(log)
    assert pub.handle(KafkaRecord(LINKED_MEMBERS, 0, 1, b"k", b'{"nik": "3603121505800002"}', T0)) == []
    assert pub.handle(KafkaRecord(LINKED_MEMBERS, 0, 2, b"k", None, T0)) == []
    assert (pub.stats.undecodable, pub.stats.consumed) == (1, 2)


def test_confirm_logs_every_disclosure_once(log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    m1 = linked_member(1, nik=NIK_1, bpjs_id="0001234567890")
    sent = pub.handle(src.record(LINKED_MEMBERS, m1.member_key, m1))
    pub.confirm(sent)
    pub.confirm(sent)  # a retried confirm must not duplicate entries
    fam = integrated_family([m1, linked_member(2, nik=None)])
    pub.confirm(pub.handle(src.record(LINKED_FAMILIES, fam.family_key, fam)))
    entries = log.query()
    assert [(e.subscriber_id, e.record_type, e.event_type) for e in entries] == [
        ("kemensos", "person", "link_created"),
        ("kemenkes", "person", "link_created"),
        ("kemensos", "family", "family_new"),
        ("kemendikbud", "family", "family_new"),
    ]
    assert entries[1].fields == ("bpjs_id", "decision", "in_bpjs", "province_code")
    assert entries[0].subject_id == m1.person_id and entries[0].disclosed_at == NOW
    assert entries[0].source == f"{LINKED_MEMBERS}/0/1"
    assert [e.message_id for e in entries[:2]] == [n.envelope.message_id for n in sent]
    # By person: the person record and both family records that listed the person as a member.
    about = log.query(person_id=m1.person_id)
    assert [(e.subscriber_id, e.record_type) for e in about] == [
        ("kemensos", "person"),
        ("kemenkes", "person"),
        ("kemensos", "family"),
        ("kemendikbud", "family"),
    ]
    assert [e.subscriber_id for e in log.query(subscriber_id="kemenkes")] == ["kemenkes"]
    assert log.query(since=NOW + timedelta(seconds=1)) == []
    assert len(log.query(until=NOW + timedelta(seconds=1), limit=3)) == 3


def test_disclosure_log_is_append_only(log: DisclosureLog) -> None:
    entry = Disclosure(
        "m-1", "kemensos", "BANSOS", "person_new", "person", "p-1", "prs-1", ("decision",), NOW, "t/0/1", ("p-1",)
    )
    assert log.append([entry]) == 1
    assert log.append([entry]) == 0
    raw = sqlite3.connect(log.path)
    for sql in (
        "UPDATE disclosures SET subscriber_id = 'x'",
        "DELETE FROM disclosures",
        "DELETE FROM disclosed_persons",
        "UPDATE disclosed_persons SET person_id = 'x'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(sql)
    assert log.query() == [entry]
    assert not any(hasattr(log, name) for name in ("delete", "update", "remove"))


def test_audit_cli_queries_by_subscriber_person_and_time(cli_app: typer.Typer, log: DisclosureLog) -> None:
    pub, src = _publisher(log), _Offsets()
    m1 = linked_member(1, nik=NIK_1, bpjs_id="0001234567890")
    pub.confirm(pub.handle(src.record(LINKED_MEMBERS, m1.member_key, m1)))
    runner = CliRunner()
    db = ["--db", str(log.path)]
    done = runner.invoke(cli_app, ["audit", "disclosures", "--subscriber", "kemenkes", "--json", *db])
    assert done.exit_code == 0, done.output
    (line,) = done.output.splitlines()
    row = json.loads(line)
    assert (row["subscriber_id"], row["purpose_code"], row["subject_id"]) == (
        "kemenkes",
        "PBI-JK-VERIFICATION",
        m1.person_id,
    )
    assert row["fields"] == ["bpjs_id", "decision", "in_bpjs", "province_code"]
    by_person = runner.invoke(cli_app, ["audit", "disclosures", "--person", m1.person_id, "--json", *db])
    assert len(by_person.output.splitlines()) == 2
    later = runner.invoke(cli_app, ["audit", "disclosures", "--since", "2024-03-02", "--json", *db])
    assert later.exit_code == 0 and later.output == ""
    table = runner.invoke(cli_app, ["audit", "disclosures", *db])
    assert "2 disclosures" in table.output
    summary = runner.invoke(cli_app, ["audit", "summary", *db])
    assert summary.output.splitlines() == [
        "subscriber\tpurpose\tdisclosures\tpending\tin_doubt\tsent",
        "kemenkes\tPBI-JK-VERIFICATION\t1\t0\t0\t1",
        "kemensos\tBANSOS-TARGETING\t1\t0\t0\t1",
    ]
    missing = runner.invoke(cli_app, ["audit", "summary", "--db", str(log.path.parent / "none.sqlite")])
    assert missing.exit_code == 2 and "no disclosure log" in missing.output


def test_serve_publisher_refuses_to_start_without_secrets_or_with_a_bad_registry(
    cli_app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in __import__("os").environ if k.startswith("REGSOSEK_PUBLISHER_")]:
        monkeypatch.delenv(name)
    reg = tmp_path / "subscriptions.json"
    reg.write_text(example_registry().model_dump_json())
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "kemensos.key").write_bytes(EXAMPLE_SECRETS["kemensos"])
    runner = CliRunner()
    args = ["serve", "publisher", "--registry", str(reg), "--keys-dir", str(keys), "--bootstrap", "127.0.0.1:1"]
    done = runner.invoke(cli_app, args)
    assert done.exit_code == 2
    assert "no pseudonym secret for: kemenkes, kemendikbud" in done.output
    (keys / "kemenkes.key").write_bytes(b"too-short")
    assert "at least 32 bytes" in runner.invoke(cli_app, args).output
    reg.write_text('{"schema_version": "2"}')
    bad = runner.invoke(cli_app, args)
    assert bad.exit_code == 2 and "is not a valid subscription registry" in bad.output
