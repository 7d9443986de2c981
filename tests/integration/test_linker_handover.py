"""A partition's link-store state follows the partition to the next linker instance (real broker).

Instance A links revision 2 of a family and stops; instance B, another process with its own state
directory but the same consumer group and the same link-store folder, takes the partitions over. A late
revision 1 of that family must then be ignored by B (stale), and a revision 3 must replace revision 2.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from services.kafka.io import read_topic
from tests.support.broker import RunningBroker
from tests.support.linker import FAM_A, MASTER, family_a, raw_json
from tests.support.linker_service import Topics, committed, start_worker
from tests.support.polling import poll_until, records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _produce(bootstrap: str, topic: str, docs: list[dict[str, object]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for doc in docs:
            producer.send(topic, key=FAM_A.encode(), value=raw_json(doc)).get(timeout=30)
    finally:
        producer.close()


def _revisions(bootstrap: str, topic: str) -> list[int]:
    return [json.loads(r.value or b"{}")["revision"] for r in read_topic(bootstrap, topic) if r.key == FAM_A.encode()]


def test_a_late_older_revision_stays_stale_after_the_partition_moves(
    kafka_broker: RunningBroker, topics: Topics, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    group = f"handover-{uuid.uuid4().hex[:6]}"
    shared = {"REGSOSEK_LINKER_LINK_STORE_DIR": str(tmp_path / "shared-links")}

    _produce(bootstrap, topics.submissions, [family_a(2)])
    first = start_worker(bootstrap, topics, tmp_path / "a" / "state", master_file, group, extra_env=shared)
    workers.append(first)
    records_until(bootstrap, topics.families, lambda rs: len(rs) >= 1, first)
    assert first.stop() == 0, first.log_tail()

    second = start_worker(bootstrap, topics, tmp_path / "b" / "state", master_file, group, extra_env=shared)
    workers.append(second)
    # The late revision 1 alone (its own batch: in one batch with revision 3 it would lose anyway).
    _produce(bootstrap, topics.submissions, [family_a(1)])
    # B has processed it once the group committed the second submission (offsets follow the outputs).
    poll_until(lambda: committed(bootstrap, group, topics.submissions) == 2, 90, second.log_tail)
    assert _revisions(bootstrap, topics.families) == [2]  # stale: no family record for revision 1
    _produce(bootstrap, topics.submissions, [{**family_a(2), "revision": 3, "submission_id": f"S-{FAM_A}-r3"}])
    records_until(bootstrap, topics.families, lambda rs: 3 in _revisions(bootstrap, topics.families), second)
    # Revision 1 produced nothing: B found revision 2 in the link store A had written.
    assert _revisions(bootstrap, topics.families) == [2, 3]
    assert second.stop() == 0, second.log_tail()
