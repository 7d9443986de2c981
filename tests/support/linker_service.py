"""The linker service on private topics, for the integration tests that run it as a subprocess."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, KafkaAdminClient

from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, REVIEW, SUBMISSIONS, SUBMISSIONS_DLQ, topic_spec
from services.kafka.topics import provision
from tools.pipeline.linker_process import TOPIC_ENV, LinkerProcess


@dataclasses.dataclass(frozen=True)
class Topics:
    """A test's private copies of the linker's five pipeline topics (no field feedback)."""

    submissions: str
    dlq: str
    members: str
    families: str
    review: str

    def by_catalogue_name(self) -> dict[str, str]:
        """Catalogue topic name -> this test's private name."""
        return {
            SUBMISSIONS: self.submissions,
            SUBMISSIONS_DLQ: self.dlq,
            LINKED_MEMBERS: self.members,
            LINKED_FAMILIES: self.families,
            REVIEW: self.review,
        }


def provision_topics(bootstrap: str) -> Topics:
    """Provision private copies of the five topics; the submissions topic accepts up to 4 MiB.

    Lets a 2 MB message reach the linker (the catalogue's topic would refuse it at produce time, and the
    gateway answers 413): the linker must still dead-letter anything above its own 1 MiB limit.
    """
    tag = uuid.uuid4().hex[:8]
    names = {
        SUBMISSIONS: f"t{tag}.submissions",
        SUBMISSIONS_DLQ: f"t{tag}.dlq",
        LINKED_MEMBERS: f"t{tag}.members",
        LINKED_FAMILIES: f"t{tag}.families",
        REVIEW: f"t{tag}.review",
    }
    report = provision(bootstrap, [dataclasses.replace(topic_spec(src), name=dst) for src, dst in names.items()])
    assert not report.differences
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs([ConfigResource("TOPIC", names[SUBMISSIONS], configs={"max.message.bytes": "4194304"})])
    finally:
        admin.close()
    return Topics(*(names[n] for n in (SUBMISSIONS, SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW)))


def start_worker(
    bootstrap: str,
    topics: Topics,
    state_dir: Path,
    master_file: Path | None,
    group: str,
    extra_env: dict[str, str] | None = None,
) -> LinkerProcess:
    """The linker on `topics`: the fake engine over `master_file`, or without one the shipped
    `python -m services.linker`. Its bootstrap, group, state folder and topics win over `extra_env`."""
    names = topics.by_catalogue_name()
    fixed = {"REGSOSEK_LINKER_BOOTSTRAP", "REGSOSEK_LINKER_APP_ID", "REGSOSEK_LINKER_STATE_DIR"}
    fixed |= {TOPIC_ENV[name] for name in names}
    env = {k: v for k, v in (extra_env or {}).items() if k not in fixed}
    env.setdefault("REGSOSEK_LINKER_FEEDBACK_TOPIC", "")  # field feedback off: `Topics` has no feedback topic
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    log = state_dir.parent / f"{group}.log"
    return LinkerProcess(
        bootstrap=bootstrap,
        group=group,
        state_dir=state_dir,
        topics=names,
        fake_master=master_file,
        extra_env=env,
        log_path=log,
    )


def committed(bootstrap: str, group: str, topic: str) -> int:
    """How many records of `topic` the consumer group has committed (sum of its committed offsets)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def written(bootstrap: str, topic: str) -> int:
    """How many records were ever written to `topic` (the sum of its partitions' end offsets).

    Unlike a count of the records read, compaction does not lower it: the broker compacts the linkage
    topics within a test, because their records carry 2022 event times and segments roll on record time.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()
