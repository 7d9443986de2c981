"""A master-update re-link survives a takeover by an instance with an empty disk (REAL broker, the linker
process with the fake engine, master updates and the changelog on).

Instance A links a family whose child is not in the master; a `born` change for the child re-links him
(update events, a new member record); the changelog then holds the family's re-linked state and the
file's change positions. A stops and its whole folder is deleted. Instance B (same group, its own EMPTY
folder: no link-store file and no journal) takes the partitions over: it restores the family from the
changelog, with the child linked and the file's change positions. Its own change reader starts from the
beginning of the change topic; the file is ahead of B's master until the reader has passed the `born`
change, so the re-sent revision waits for it and is linked with the child in the master (the same link and
person id as A's re-link), and B publishes no update event again (the restored file already reflects the
change). Without the re-link on the changelog, B's restored child would be unlinked and B's reader
would re-link him and publish his events a second time.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from contracts.linkage_outputs import LINKED_MEMBER_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.topics import BPJS_CHANGES, DTKS_CHANGES, LINK_STATE_CHANGELOG, POPULATION_CHANGES, UPDATES, topic_spec
from services.kafka.io import read_topic
from services.kafka.topics import provision
from services.linker import changelog
from tests.support.broker import RunningBroker
from tests.support.linker import MASTER, member_payload, nik_for, submission_payload
from tests.support.linker_service import Topics, committed, start_worker
from tests.support.polling import poll_until, records_until
from tests.support.updates import population_change
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

FAMILY = "3603010001000100003001"
RIZKY = nik_for(13, yy=15)
CHILD = f"{FAMILY}-02"


def _submission() -> bytes:
    members = [
        member_payload(1, "Ahmad Fauzi", nik_for(11)),
        member_payload(2, "Rizky", RIZKY, relationship=3, birth=(15, 5, 2015)),
    ]
    return json.dumps(submission_payload(members, family_key=FAMILY)).encode()


def _committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed count, or -1 while the broker has no group coordinator yet (a new broker)."""
    try:
        return committed(bootstrap, group, topic)
    except KafkaError:
        return -1


def _child(bootstrap: str, topic: str) -> list[bytes | None]:
    return [r.value for r in read_topic(bootstrap, topic) if r.key == CHILD.encode()]


def test_a_master_update_relink_is_restored_from_the_changelog_by_an_instance_with_an_empty_disk(
    kafka_broker: RunningBroker, topics: Topics, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    names = {s: f"cu{tag}.{s}" for s in (POPULATION_CHANGES, DTKS_CHANGES, BPJS_CHANGES, UPDATES, LINK_STATE_CHANGELOG)}
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(s), name=d) for s, d in names.items()]).differences
    master = tmp_path / "master.json"
    master.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    env = {
        "REGSOSEK_LINKER_UPDATES_ENABLED": "true",
        "REGSOSEK_LINKER_POPULATION_CHANGES_TOPIC": names[POPULATION_CHANGES],
        "REGSOSEK_LINKER_DTKS_CHANGES_TOPIC": names[DTKS_CHANGES],
        "REGSOSEK_LINKER_BPJS_CHANGES_TOPIC": names[BPJS_CHANGES],
        "REGSOSEK_LINKER_UPDATES_TOPIC": names[UPDATES],
        "REGSOSEK_LINKER_CHANGELOG_TOPIC": names[LINK_STATE_CHANGELOG],
    }
    group = f"cu{tag}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        first = start_worker(bootstrap, topics, tmp_path / "a" / "state", master, group, extra_env=env)
        workers.append(first)
        producer.send(topics.submissions, key=FAMILY.encode(), value=_submission()).get(timeout=30)
        poll_until(lambda: _committed(bootstrap, group, topics.submissions) == 1, 90, first.log_tail)
        unlinked = LINKED_MEMBER_ADAPTER.validate_json(_child(bootstrap, topics.members)[-1] or b"")
        assert unlinked.matched_nik is None
        born = population_change("born", "c-born-rizky", RIZKY, "Rizky")
        producer.send(names[POPULATION_CHANGES], key=b"ref-rizky", value=born).get(timeout=30)
        events = records_until(bootstrap, names[UPDATES], lambda r: len(r) >= 1, first)
        assert {LINKAGE_UPDATE_ADAPTER.validate_json(e.value or b"").member_key for e in events} == {CHILD}
        # The re-link and the file's change positions are on the changelog.
        logged = records_until(
            bootstrap,
            names[LINK_STATE_CHANGELOG],
            lambda r: changelog.POSITIONS_KEY.encode() in {x.key for x in r},
            first,
        )
        family = changelog.decode([r for r in logged if r.key == FAMILY.encode()][-1].value or b"", 0)
        assert next(m for m in family.members if m.member_key == CHILD).link_nik == RIZKY
        assert first.stop() == 0, first.log_tail()
        events_by_a = [r.value for r in read_topic(bootstrap, names[UPDATES])]
        relinked = LINKED_MEMBER_ADAPTER.validate_json(_child(bootstrap, topics.members)[-1] or b"")
        assert relinked.matched_nik == RIZKY
        shutil.rmtree(tmp_path / "a")  # the disk is gone: no link-store file, no journal

        second = start_worker(bootstrap, topics, tmp_path / "b" / "state", master, group, extra_env=env)
        workers.append(second)
        seen = len(_child(bootstrap, topics.members))
        producer.send(topics.submissions, key=FAMILY.encode(), value=_submission()).get(timeout=30)
        poll_until(lambda: _committed(bootstrap, group, topics.submissions) == 2, 120, second.log_tail)
        again = _child(bootstrap, topics.members)
        assert len(again) == seen + 1
        child = LINKED_MEMBER_ADAPTER.validate_json(again[-1] or b"")
        assert (child.decision, child.matched_nik, child.person_id) == (
            relinked.decision,
            RIZKY,
            relinked.person_id,
        )
        assert second.stop() == 0, second.log_tail()
        assert [r.value for r in read_topic(bootstrap, names[UPDATES])] == events_by_a  # nothing published again
    finally:
        producer.close()
