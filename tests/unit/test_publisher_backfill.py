"""Backfill without Kafka: the current state of the compacted topics, snapshot decisions, the write-ahead
log, the completion mark, a crash in the middle.

The real-broker test is tests/integration/test_publisher_backfill.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from contracts.linkage_outputs import to_canonical_json
from contracts.subscriptions import EventType, Subscription, SubscriptionFilter, SubscriptionRegistry
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.privacy.disclosure import DisclosureLog
from services.publisher.backfill import current_state, run_backfills
from services.publisher.core import Notification, Publisher
from services.publisher.loop import PublishError
from services.publisher.registry_file import load_registry
from tests.support.publisher import integrated_family, linked_member

NOW = datetime(2025, 1, 1, tzinfo=UTC)
T_OLD = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
SECRETS = {"dinsos": b"test-only-secret-dinsos-0123456789abcdef"}
BANTEN, JABAR = "3603010001000100001001", "3201010001000100001001"


def _sub(**kw: object) -> Subscription:
    fields: dict[str, object] = dict(
        subscriber_id="dinsos",
        purpose_code="BANSOS-TARGETING",
        purpose_text="Targeting of social assistance",
        event_types=(EventType.PERSON_NEW, EventType.LINK_CREATED, EventType.FAMILY_NEW, EventType.LINK_CHANGED),
        filters=SubscriptionFilter(region_codes=("36",)),
        person_fields=("member_key", "decision"),
        family_fields=("family_key", "member_count"),
        valid_from=NOW,
        backfill=True,
    )
    return Subscription.model_validate(fields | kw)


class _Topic:
    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def record(self, topic: str, key: str, value: BaseModel | None) -> KafkaRecord:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return KafkaRecord(topic, 0, offset, key.encode(), None if value is None else to_canonical_json(value), T_OLD)


def seed_world() -> list[KafkaRecord]:
    """Two Banten families (one member revised, one family deleted by a tombstone) and one in Jawa Barat."""
    t = _Topic()
    a1, a2 = linked_member(1, nik="3603121505800002"), linked_member(2, nik=None)
    a2_new = linked_member(2, nik="3603125505850003", revision=2)
    b1 = linked_member(1, nik=None, family_key=BANTEN[:-3] + "002")
    c1 = linked_member(1, nik="3201121505800002", family_key=JABAR)
    return [
        t.record(LINKED_MEMBERS, a1.member_key, a1),
        t.record(LINKED_MEMBERS, a2.member_key, a2),
        t.record(LINKED_FAMILIES, BANTEN, integrated_family([a1, a2])),
        t.record(LINKED_MEMBERS, b1.member_key, b1),
        t.record(LINKED_FAMILIES, b1.family_key, integrated_family([b1])),
        t.record(LINKED_MEMBERS, c1.member_key, c1),
        t.record(LINKED_FAMILIES, JABAR, integrated_family([c1])),
        t.record(LINKED_MEMBERS, a2.member_key, a2_new),
        t.record(LINKED_FAMILIES, BANTEN, integrated_family([a1, a2_new], revision=2)),
        t.record(LINKED_FAMILIES, b1.family_key, None),
        t.record(LINKED_MEMBERS, b1.member_key, None),
    ]


def test_current_state_keeps_the_latest_value_per_key_and_drops_tombstones() -> None:
    state = current_state(seed_world())
    assert [(r.topic, r.offset) for r in state] == [
        (LINKED_FAMILIES, 2),
        (LINKED_FAMILIES, 3),
        (LINKED_MEMBERS, 0),
        (LINKED_MEMBERS, 3),
        (LINKED_MEMBERS, 4),
    ]


@pytest.fixture
def log(tmp_path: Path) -> DisclosureLog:
    return DisclosureLog(tmp_path / "d.sqlite")


def _publisher(log: DisclosureLog, sub: Subscription) -> Publisher:
    return Publisher(SubscriptionRegistry(subscriptions=(sub,)), KeyRing(SECRETS), log, clock=lambda: NOW)


def test_backfill_sends_each_matching_current_record_once_as_snapshot(log: DisclosureLog) -> None:
    pub = _publisher(log, _sub())
    sent: list[Notification] = []
    assert run_backfills(pub, sent.extend, seed_world, lambda: NOW) == {"dinsos": 3}
    ring = KeyRing(SECRETS).for_subscriber("dinsos")
    got = sorted((n.envelope.event_type, n.envelope.record_type, n.envelope.snapshot, n.key) for n in sent)
    assert got == sorted(
        [
            (EventType.LINK_CREATED, "person", True, ring.member(f"{BANTEN}-01")),
            (EventType.LINK_CREATED, "person", True, ring.member(f"{BANTEN}-02")),  # its revision 2 (now linked)
            (EventType.FAMILY_NEW, "family", True, ring.family(BANTEN)),
        ]
    )
    family = next(n for n in sent if n.envelope.record_type == "family")
    assert family.envelope.record == {"family_key": ring.family(BANTEN), "member_count": 2}
    assert '"snapshot":true' in family.envelope.model_dump_json()
    entries = log.query()
    assert sorted(e.source for e in entries) == [
        f"snapshot:{LINKED_FAMILIES}/0/3",
        f"snapshot:{LINKED_MEMBERS}/0/0",
        f"snapshot:{LINKED_MEMBERS}/0/4",
    ]
    assert set(log.status(e.message_id for e in entries).values()) == {"sent"}
    # Marked done: a second start sends nothing; the live feed of an older revision sends nothing either.
    assert run_backfills(pub, sent.extend, seed_world, lambda: NOW) == {}
    # Live records (after valid_from) the snapshot covered: an older revision and the same record.
    later = int(NOW.timestamp() * 1000) + 1000
    again = _publisher(log, _sub())
    assert again.handle(replace(seed_world()[1], timestamp_ms=later)) == []
    assert again.handle(replace(seed_world()[0], timestamp_ms=later)) == []
    newer = linked_member(1, nik=None, revision=3)  # the link was wrong: a correction of the snapshot
    (live,) = again.handle(
        KafkaRecord(LINKED_MEMBERS, 0, 20, newer.member_key.encode(), to_canonical_json(newer), later)
    )
    first = next(n for n in sent if n.key == ring.member(f"{BANTEN}-01"))
    assert (live.envelope.snapshot, live.envelope.event_type, live.envelope.correction, live.envelope.supersedes) == (
        False,
        EventType.LINK_CHANGED,
        True,
        first.envelope.message_id,
    )


def test_a_subscription_without_creation_events_or_backfill_gets_no_snapshot(log: DisclosureLog) -> None:
    deaths_only = _sub(event_types=(EventType.DEATH,), family_fields=("member_count",))
    assert run_backfills(_publisher(log, deaths_only), [].extend, seed_world, lambda: NOW) == {"dinsos": 0}
    no_backfill = _sub(subscriber_id="dinsos", backfill=False)
    read_called: list[bool] = []
    assert (
        run_backfills(_publisher(log, no_backfill), [].extend, lambda: read_called.append(True) or [], lambda: NOW)
        == {}
    )
    assert read_called == []


def test_a_failed_send_leaves_the_backfill_pending_and_a_restart_completes_it(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    log = DisclosureLog(path)

    def refuse(chunk: list[Notification]) -> None:
        raise PublishError("not acknowledged")

    with pytest.raises(PublishError):
        run_backfills(_publisher(log, _sub()), refuse, seed_world, lambda: NOW)
    first_ids = sorted(e.message_id for e in log.query())
    assert len(first_ids) == 3 and set(log.status(first_ids).values()) == {"pending"}
    log.close()
    log = DisclosureLog(path)
    sent: list[Notification] = []
    pub = _publisher(log, _sub())  # marks the three entries in doubt
    assert run_backfills(pub, sent.extend, seed_world, lambda: NOW) == {"dinsos": 3}
    assert sorted(n.envelope.message_id for n in sent) == first_ids  # the same messages, one entry each
    assert log.count() == 3 and set(log.status(first_ids).values()) == {"sent"}


def test_subscriptions_add_asks_for_a_backfill_by_default(cli_app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.json"
    common = [
        "--purpose-code",
        "TEST-PURPOSE",
        "--purpose",
        "Targeting of social assistance",
        "--event",
        "person_new",
        "--person-field",
        "decision",
        "--registry",
        str(path),
    ]
    done = CliRunner().invoke(cli_app, ["subscriptions", "add", "dinsos", *common])
    assert done.exit_code == 0, done.output
    assert done.output.strip().endswith("(registry version 1); backfill when the publisher next starts")
    done = CliRunner().invoke(cli_app, ["subscriptions", "add", "bappenas", "--no-backfill", *common])
    assert done.exit_code == 0, done.output
    registry = load_registry(path)
    assert [(s.subscriber_id, s.backfill) for s in registry.subscriptions] == [("dinsos", True), ("bappenas", False)]
    assert path.read_text().count('"backfill"') == 1  # false is left out of the file


def test_the_loop_backfills_before_its_first_batch_and_counts_the_notifications(log: DisclosureLog) -> None:
    from prometheus_client import CollectorRegistry

    from services.publisher.loop import LoopConfig, PublisherLoop
    from services.publisher.metrics import PublisherMetrics
    from tests.support.publisher_fakes import FakeBroker, FakeProducer

    broker = FakeBroker()
    registry = SubscriptionRegistry(subscriptions=(_sub(),))
    metrics = PublisherMetrics(CollectorRegistry(), registry)
    loop = PublisherLoop(
        _publisher(log, _sub()),
        LoopConfig("fake:0"),
        metrics=metrics,
        consumer=broker.consumer(),
        producer=FakeProducer(broker),
    )
    assert loop.backfill(read=seed_world) == {"dinsos": 3}
    assert sorted(json.loads(v)["event_type"] for _, _, v in broker.delivered) == [
        "family_new",
        "link_created",
        "link_created",
    ]
    assert all(json.loads(v)["snapshot"] is True for _, _, v in broker.delivered)

    def count(event: str) -> float:
        value = metrics.registry.get_sample_value(
            "regsosek_publisher_notifications_total", {"subscriber": "dinsos", "event_type": event}
        )
        return value or 0.0

    assert (count("link_created"), count("family_new")) == (2.0, 1.0)
    assert loop.backfill(read=seed_world) == {} and len(broker.delivered) == 3
