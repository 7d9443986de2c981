"""The write-ahead disclosure log against the REAL broker, with real SQLite write failures injected.

Faults are SQLite triggers in the real disclosure-log file that abort one kind of write (the entry
before the send, or the `sent` outcome after the acknowledgement), and a subscriber topic whose
`max.message.bytes` makes the broker refuse the notification. After each fault: what reached the
subscriber topics, what the log says and what the consumer group committed; then a restart.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from contracts.linkage_outputs import to_canonical_json
from contracts.subscriptions import NotificationEnvelope, SubscriptionRegistry
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, UPDATES
from integration.pseudonyms import KeyRing
from services.kafka.io import JsonProducer, read_topic
from services.privacy.disclosure import IN_DOUBT, PENDING, SENT, DisclosureLog, DisclosureLogError
from services.publisher.core import Publisher, SourceTopics
from services.publisher.loop import LoopConfig, PublisherLoop, PublishError
from services.publisher.registry_file import save_registry
from services.publisher.topics import ensure_subscriber_topics
from tests.support.broker import RunningBroker
from tests.support.publisher import example_subscriptions, integrated_family, linked_member

pytestmark = [pytest.mark.broker]

REPO = Path(__file__).resolve().parents[2]
# kemensos: both persons and the family; kemenkes: the BPJS member; kemendikbud: the family.
EXPECTED = 5

FAIL_ENTRY = (
    "CREATE TRIGGER inject_fault BEFORE INSERT ON disclosures "
    "BEGIN SELECT RAISE(ABORT, 'injected: the log cannot be written'); END"
)
FAIL_SENT_MARK = (
    "CREATE TRIGGER inject_fault BEFORE INSERT ON disclosure_outcomes WHEN NEW.outcome = 'sent' "
    "BEGIN SELECT RAISE(ABORT, 'injected: the log cannot be written'); END"
)


class World:
    """Private source topics with one family, tagged subscribers, a group and a disclosure-log file."""

    def __init__(self, bootstrap: str, tmp_path: Path) -> None:
        self.bootstrap, self.tag = bootstrap, uuid.uuid4().hex[:6]
        self.topics = SourceTopics(*(f"t-{self.tag}.{n}" for n in ("members", "families", "updates")))
        subs = tuple(
            s.model_copy(update={"subscriber_id": f"{s.subscriber_id}-{self.tag}"}) for s in example_subscriptions()
        )
        self.registry = SubscriptionRegistry(registry_version=3, subscriptions=subs)
        self.secrets = {s.subscriber_id: uuid.uuid4().hex.encode() * 2 for s in subs}
        self.group = f"g-{self.tag}"
        self.db = tmp_path / "disclosures.sqlite"
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-write-ahead")
        self.admin.create_topics([NewTopic(name, 1, 1) for name in self.topics.all()])

    def produce_family(self) -> None:
        m1 = linked_member(1, nik="3603121505800002", bpjs_id="0001234567890")
        m2 = linked_member(2, nik=None)
        fam = integrated_family([m1, m2])
        with JsonProducer(self.bootstrap) as producer:
            producer.send_many(self.topics.members, [(m.member_key, to_canonical_json(m)) for m in (m1, m2)])
            producer.send(self.topics.families, fam.family_key, to_canonical_json(fam))

    def run(self) -> PublisherLoop:
        """A publisher process: construct (reconciles the log), run until idle, close. Raises its fault."""
        publisher = Publisher(self.registry, KeyRing(self.secrets), DisclosureLog(self.db), topics=self.topics)
        loop = PublisherLoop(publisher, LoopConfig(self.bootstrap, group_id=self.group, poll_timeout_ms=200))
        try:
            loop.run_until_idle(idle_s=2.0, max_s=60.0)
        finally:
            loop.close()
            publisher.log.close()
        return loop

    def delivered(self) -> list[str]:
        """Message ids on every subscriber topic (duplicates kept)."""
        return [
            NotificationEnvelope.model_validate_json(r.value or b"").message_id
            for s in self.registry.subscriptions
            for r in read_topic(self.bootstrap, s.topic)
        ]

    def committed(self) -> dict[str, int]:
        offsets = self.admin.list_consumer_group_offsets(self.group)
        return {tp.topic.rsplit(".", 1)[1]: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def statuses(self) -> dict[str, str]:
        log = DisclosureLog(self.db, read_only=True)
        try:
            return log.status(d.message_id for d in log.query())
        finally:
            log.close()

    def inject(self, trigger: str) -> None:
        """Create the disclosure log's schema and install the fault `trigger` in it."""
        DisclosureLog(self.db).close()
        self.sql(trigger)

    def prepare(self) -> None:
        """The subscribers' topics exist and one family (two members) is on the linkage topics."""
        ensure_subscriber_topics(self.bootstrap, self.registry)
        self.produce_family()

    def sql(self, statement: str) -> None:
        raw = sqlite3.connect(self.db)
        try:
            raw.execute(statement)
            raw.commit()
        finally:
            raw.close()


@pytest.fixture
def world(kafka_broker: RunningBroker, tmp_path: Path) -> Iterator[World]:
    w = World(kafka_broker.bootstrap, tmp_path)
    yield w
    w.admin.close()


ALL_COMMITTED = {"members": 2, "families": 1}


def test_an_unwritable_log_stops_the_publisher_before_it_sends(world: World) -> None:
    world.prepare()
    world.inject(FAIL_ENTRY)
    with pytest.raises(DisclosureLogError, match="injected"):
        world.run()
    assert world.delivered() == [] and world.committed() == {} and world.statuses() == {}

    world.sql("DROP TRIGGER inject_fault")
    world.run()
    delivered = world.delivered()
    assert len(delivered) == EXPECTED == len(set(delivered))
    assert world.statuses() == dict.fromkeys(delivered, SENT)
    assert world.committed() == ALL_COMMITTED


def test_a_crash_between_the_ack_and_the_sent_mark_is_reconciled_on_restart(world: World) -> None:
    world.prepare()
    world.inject(FAIL_SENT_MARK)
    with pytest.raises(DisclosureLogError, match="injected"):
        world.run()
    first = world.delivered()
    assert len(first) == EXPECTED and world.committed() == {}
    assert world.statuses() == dict.fromkeys(first, PENDING)

    world.sql("DROP TRIGGER inject_fault")
    world.run()
    # Sent again with the same ids (subscribers drop the duplicates), one log entry each, now sent.
    again = world.delivered()
    assert sorted(again) == sorted(first * 2)
    assert world.statuses() == dict.fromkeys(first, SENT)
    assert world.committed() == ALL_COMMITTED


def test_a_refused_send_leaves_pending_entries_that_the_restart_delivers(world: World) -> None:
    # The broker refuses every notification to kemensos: its topic takes records of at most 64 bytes.
    sos = world.registry.subscriptions[0]
    world.admin.create_topics([NewTopic(sos.topic, 1, 1, topic_configs={"max.message.bytes": "64"})])
    world.prepare()
    with pytest.raises(PublishError):
        world.run()
    first = world.delivered()
    assert len(first) == 2 and world.committed() == {}  # kemenkes and kemendikbud were acknowledged
    pending = world.statuses()
    assert len(pending) == EXPECTED and set(pending.values()) == {PENDING} and set(first) < set(pending)

    world.admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, sos.topic, configs={"max.message.bytes": "1048588"})]
    )
    log = DisclosureLog(world.db)
    assert Publisher(world.registry, KeyRing(world.secrets), log, topics=world.topics).stats.in_doubt == EXPECTED
    log.close()
    assert world.statuses() == dict.fromkeys(pending, IN_DOUBT)
    world.run()
    delivered = world.delivered()
    assert sorted(set(delivered)) == sorted(pending) and len(delivered) == EXPECTED + 2
    assert world.statuses() == dict.fromkeys(pending, SENT)
    assert world.committed() == ALL_COMMITTED


def test_serve_publisher_exits_1_without_sending_when_the_log_cannot_be_written(world: World, tmp_path: Path) -> None:
    """`regsosek serve publisher` as a process (catalogue topics): it stops, exit 1, nothing sent."""
    for name in (LINKED_MEMBERS, LINKED_FAMILIES, UPDATES):
        with suppress(TopicAlreadyExistsError):
            world.admin.create_topics([NewTopic(name, 1, 1)])
    member = linked_member(3, nik=None, family_key=f"3603010001{int(world.tag, 16) % 10**12:012d}")
    with JsonProducer(world.bootstrap) as producer:
        producer.send(LINKED_MEMBERS, member.member_key, to_canonical_json(member))
    registry, keys = tmp_path / "subscriptions.json", tmp_path / "keys"
    save_registry(registry, world.registry)
    keys.mkdir()
    for sid, secret in world.secrets.items():
        (keys / f"{sid}.key").write_bytes(secret)
    world.inject(FAIL_ENTRY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGSOSEK_PUBLISHER_")}
    env |= {"REGSOSEK_PUBLISHER_GROUP_ID": world.group, "REGSOSEK_PUBLISHER_POLL_TIMEOUT_MS": "200"}
    done = subprocess.run(  # noqa: S603 - fixed command line
        [
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            "publisher",
            "--bootstrap",
            world.bootstrap,
            "--registry",
            str(registry),
            "--keys-dir",
            str(keys),
            "--disclosure-db",
            str(world.db),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr.decode()[-2000:]
    assert b"Traceback" not in done.stderr
    assert world.delivered() == [] and world.committed() == {} and world.statuses() == {}
