"""The write-ahead disclosure log, with fakes of the publisher's ports (consumer, producer, log).

Faults are injected at each step of a batch: the log write before the send, the send itself, and the
`sent` mark after the acknowledgement. Each time: what was sent, what the log says, which offsets were
committed, and what a restart (a new publisher on the same log file, the uncommitted input redelivered)
makes of it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pytest
import typer
from kafka import TopicPartition
from typer.testing import CliRunner

from contracts.linkage_outputs import to_canonical_json
from contracts.topics import LINKED_MEMBERS
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import IN_DOUBT, PENDING, SENT, Disclosure, DisclosureLog, DisclosureLogError
from services.publisher.core import Publisher
from services.publisher.loop import LoopConfig, PublisherLoop, PublishError
from tests.support.publisher import (
    EXAMPLE_SECRETS,
    example_registry,
    linked_member,
)
from tests.support.publisher_fakes import (
    EXPECTED,
    NOW,
    T0,
    FakeBroker,
    FakeProducer,
    seed_world,
)


class FaultyLog(DisclosureLog):
    """The real log, whose `append` (the write-ahead) or `mark` (the `sent` outcome) can be made to fail."""

    fail: str | None = None

    def append(self, entries: Iterable[Disclosure], *, db: sqlite3.Connection | None = None) -> int:
        if self.fail == "append":
            raise sqlite3.OperationalError("disk I/O error")
        return super().append(entries, db=db)

    def mark(
        self, outcome: str, message_ids: Iterable[str], moment: datetime, *, db: sqlite3.Connection | None = None
    ) -> None:
        if self.fail == "mark":
            raise sqlite3.OperationalError("database or disk is full")
        super().mark(outcome, message_ids, moment, db=db)


def _loop(broker: FakeBroker, log: DisclosureLog, producer: FakeProducer | None = None) -> PublisherLoop:
    publisher = Publisher(example_registry(), KeyRing(EXAMPLE_SECRETS), log, clock=lambda: NOW)
    return PublisherLoop(
        publisher, LoopConfig("fake:0"), consumer=broker.consumer(), producer=producer or FakeProducer(broker)
    )


def _statuses(path: Path) -> dict[str, str]:
    log = DisclosureLog(path, read_only=True)
    try:
        return log.status(d.message_id for d in log.query())
    finally:
        log.close()


def _faulty_world(tmp_path: Path, fail: str) -> tuple[FakeBroker, Path, FaultyLog, PublisherLoop]:
    """One batch (`seed_world`) and a loop over a FaultyLog at `tmp_path/d.sqlite` whose `fail` step fails."""
    broker, db = FakeBroker(), tmp_path / "d.sqlite"
    seed_world(broker)
    faulty = FaultyLog(db)
    faulty.fail = fail
    return broker, db, faulty, _loop(broker, faulty)


def _all_committed(broker: FakeBroker) -> dict[TopicPartition, int]:
    return {tp: len(rs) for tp, rs in broker.inputs.items()}


def test_a_log_that_cannot_be_written_stops_the_batch_before_anything_is_sent(tmp_path: Path) -> None:
    broker, db, faulty, loop = _faulty_world(tmp_path, "append")
    with pytest.raises(DisclosureLogError, match="disk I/O error"):
        loop.run()  # the loop itself stops: the error is not swallowed
    assert broker.delivered == [] and broker.committed == {}
    assert _statuses(db) == {}
    faulty.close()

    # Restart with a writable log: the uncommitted batch is redelivered and sent, each entry once.
    log = DisclosureLog(db)
    assert _loop(broker, log).run_once() == 3
    assert len(broker.delivered) == EXPECTED
    assert _statuses(db) == dict.fromkeys(broker.message_ids(), SENT)
    assert broker.committed == _all_committed(broker)


def test_a_failed_send_leaves_pending_entries_that_the_restart_sends_again_without_duplicates(
    tmp_path: Path,
) -> None:
    broker, db = FakeBroker(), tmp_path / "d.sqlite"
    seed_world(broker)
    log = DisclosureLog(db)
    loop = _loop(broker, log, FakeProducer(broker, ack_limit=2))
    with pytest.raises(PublishError):
        loop.run_once()
    delivered_before = broker.message_ids()
    assert len(delivered_before) == 2 and broker.committed == {}
    # Every notification of the batch was logged before the send, none of them is marked sent.
    pending = _statuses(db)
    assert len(pending) == EXPECTED and set(pending.values()) == {PENDING}
    assert set(delivered_before) <= set(pending)
    assert loop.publisher.state.get("kemensos", "m:" + linked_member(1, nik=None).member_key) is None
    log.close()

    log = DisclosureLog(db)
    restarted = _loop(broker, log)
    assert restarted.publisher.stats.in_doubt == EXPECTED
    assert _statuses(db) == dict.fromkeys(pending, IN_DOUBT)
    assert restarted.run_once() == 3
    resent = broker.message_ids()[2:]
    assert sorted(resent) == sorted(pending)  # the same ids: subscribers drop the 2 duplicates
    assert log.count() == EXPECTED  # no duplicate entry
    assert _statuses(db) == dict.fromkeys(pending, SENT)
    assert broker.committed == _all_committed(broker)


def test_a_crash_between_the_ack_and_the_sent_mark_is_reconciled_on_restart(tmp_path: Path) -> None:
    broker, db, faulty, loop = _faulty_world(tmp_path, "mark")
    with pytest.raises(DisclosureLogError, match="disk is full"):
        loop.run_once()
    first = broker.message_ids()
    assert len(first) == EXPECTED and broker.committed == {}
    assert _statuses(db) == dict.fromkeys(first, PENDING)
    # The delivery state and the input positions moved together with the (failed) sent mark: not at all.
    assert loop.publisher.state.positions() == {}
    faulty.close()

    log = DisclosureLog(db)
    restarted = _loop(broker, log)
    assert restarted.publisher.stats.in_doubt == EXPECTED
    restarted.run_once()
    # Everything in doubt is sent again with the same ids (the death update too: an in-doubt update
    # is not "already delivered"), and then recorded as sent; still one entry per message.
    assert sorted(broker.message_ids()[EXPECTED:]) == sorted(first)
    assert log.count() == EXPECTED
    assert _statuses(db) == dict.fromkeys(first, SENT)
    assert broker.committed == _all_committed(broker)
    log.close()

    # A later restart finds nothing in doubt, and a replay of the whole input (offsets reset) sends nothing.
    log = DisclosureLog(db)
    broker.committed.clear()
    again = _loop(broker, log)
    assert again.publisher.stats.in_doubt == 0
    assert again.run_once() == 3
    assert len(broker.message_ids()) == 2 * EXPECTED


def test_sent_outcomes_are_append_only_and_an_old_log_counts_as_sent(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    log = DisclosureLog(db)
    entry = Disclosure(
        "m-1", "kemensos", "BANSOS", "person_new", "person", "p-1", "prs-1", ("decision",), NOW, "t/0/1", ("p-1",)
    )
    log.append([entry])
    assert log.status(["m-1", "m-unknown"]) == {"m-1": PENDING}
    log.mark(SENT, ["m-1", "m-unknown"], NOW)  # an id not in the log gets no outcome
    log.mark(SENT, ["m-1"], NOW)
    assert log.status(["m-1"]) == {"m-1": SENT} and log.sent_at("m-1") == NOW
    raw = sqlite3.connect(db)
    for sql in ("UPDATE disclosure_outcomes SET outcome = 'in_doubt'", "DELETE FROM disclosure_outcomes"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(sql)
    assert raw.execute("SELECT count(*) FROM disclosure_outcomes").fetchone() == (1,)
    with pytest.raises(ValueError, match="outcome"):
        log.mark(PENDING, ["m-1"], NOW)
    log.close()

    # A log written before write-ahead (no outcomes table) logged entries after their acknowledgement.
    raw.execute("DROP TABLE disclosure_outcomes")
    raw.close()
    old = DisclosureLog(db, read_only=True)
    assert old.status(["m-1"]) == {"m-1": SENT} and old.query(status=PENDING) == []
    old.close()
    migrated = DisclosureLog(db)
    assert migrated.status(["m-1"]) == {"m-1": SENT} and migrated.sent_at("m-1") == NOW
    assert Publisher(example_registry(), KeyRing(EXAMPLE_SECRETS), migrated).stats.in_doubt == 0


def test_read_only_audit_never_writes(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    DisclosureLog(db).close()
    before = db.read_bytes()
    log = DisclosureLog(db, read_only=True)
    with pytest.raises(DisclosureLogError, match="cannot be written"):
        log.mark(SENT, ["m-1"], NOW)
    log.close()
    assert db.read_bytes() == before


def test_audit_shows_pending_in_doubt_and_sent(cli_app: typer.Typer, tmp_path: Path) -> None:
    broker, db = FakeBroker(), tmp_path / "d.sqlite"
    seed_world(broker)
    log = DisclosureLog(db)
    with pytest.raises(PublishError):
        _loop(broker, log, FakeProducer(broker, ack_limit=0)).run_once()
    # A restarted publisher: the 5 entries become in doubt. Of two new kemensos notifications it logs
    # both ahead, and records the acknowledgement of one (the other is still being sent).
    publisher = Publisher(example_registry(), KeyRing(EXAMPLE_SECRETS), log, clock=lambda: NOW)
    assert publisher.stats.in_doubt == EXPECTED
    other = "3603010001000100001002"
    fresh = [
        n
        for serial, nik in ((1, "3603120101900004"), (2, "3603124101900005"))
        for n in publisher.handle(
            KafkaRecord(
                LINKED_MEMBERS, 1, serial, b"k", to_canonical_json(linked_member(serial, nik=nik, family_key=other)), T0
            )
        )
    ]
    assert [n.envelope.subscriber_id for n in fresh] == ["kemensos", "kemensos"]
    publisher.log_pending(fresh)
    publisher.confirm(fresh[:1])
    log.close()

    runner, args = CliRunner(), ["--db", str(db)]
    summary = runner.invoke(cli_app, ["audit", "summary", *args])
    assert summary.exit_code == 0, summary.output
    assert summary.output.splitlines() == [
        "subscriber\tpurpose\tdisclosures\tpending\tin_doubt\tsent",
        "kemendikbud\tPIP-PLANNING\t1\t0\t1\t0",
        "kemenkes\tPBI-JK-VERIFICATION\t1\t0\t1\t0",
        "kemensos\tBANSOS-TARGETING\t5\t1\t3\t1",
    ]
    sent = runner.invoke(cli_app, ["audit", "disclosures", "--status", "sent", "--json", *args])
    assert sent.exit_code == 0, sent.output
    (row,) = [json.loads(line) for line in sent.output.splitlines()]
    assert (row["message_id"], row["status"], row["sent_at"]) == (fresh[0].envelope.message_id, SENT, NOW.isoformat())
    pending = runner.invoke(cli_app, ["audit", "disclosures", "--status", "pending", "--json", *args])
    assert [json.loads(line)["message_id"] for line in pending.output.splitlines()] == [fresh[1].envelope.message_id]
    table = runner.invoke(cli_app, ["audit", "disclosures", "--subscriber", "kemenkes", *args])
    assert table.exit_code == 0 and IN_DOUBT in table.output
    bad = runner.invoke(cli_app, ["audit", "disclosures", "--status", "lost", *args])
    assert bad.exit_code == 2


def test_serve_publisher_exits_1_before_any_broker_work_when_the_log_cannot_be_opened(
    cli_app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("REGSOSEK_PUBLISHER_")]:
        monkeypatch.delenv(name)
    reg, keys = tmp_path / "subscriptions.json", tmp_path / "keys"
    reg.write_text(example_registry().model_dump_json())
    keys.mkdir()
    for sid, secret in EXAMPLE_SECRETS.items():
        (keys / f"{sid}.key").write_bytes(secret)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    done = CliRunner().invoke(
        cli_app,
        [
            "serve",
            "publisher",
            "--registry",
            str(reg),
            "--keys-dir",
            str(keys),
            "--bootstrap",
            "127.0.0.1:1",
            "--disclosure-db",
            str(blocker / "d.sqlite"),
        ],
    )
    # A clean exit 1 from the command (SystemExit), not an exception from a broker call to port 1.
    assert done.exit_code == 1 and type(done.exception) is SystemExit, done.exception
    assert blocker.read_text() == "x"
