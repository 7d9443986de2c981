"""Co-partitioning on the REAL broker: every member record sits on its family record's partition.

The linker service (`python -m services.linker`, fake engine) links families whose keys are spread over
the partitions; the submissions are written with the catalogue's partitioner (by district), as the gateway
does. Each member record, family record and review task of a family must then carry one partition number.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from contracts.partitioning import partition_for, producer_partitioner
from services.kafka.io import compacted_state
from tests.support.broker import RunningBroker
from tests.support.linker import member_payload, nik_for, submission_payload
from tests.support.linker_service import Topics, start_worker
from tests.support.polling import records_until
from tools.pipeline.linker_process import LinkerProcess

FAMILIES = 40
MEMBERS_PER_FAMILY = 3


def _family_key(i: int) -> str:
    return f"3603{10 + 7 * i:03d}001000100{i:03d}001"  # one district per family (7 digits), 22 digits


def test_members_share_their_family_partition(
    kafka_broker: RunningBroker,
    topics: Topics,  # noqa: F811
    workers: list[LinkerProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    master_file = tmp_path / "master.json"
    master_file.write_text("[]")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", partitioner=producer_partitioner)
    try:
        futures = []
        for i in range(FAMILIES):
            members = [member_payload(s, f"Anggota {s}", nik_for(i * 10 + s)) for s in range(1, MEMBERS_PER_FAMILY + 1)]
            doc = submission_payload(members, family_key=_family_key(i))
            futures.append(
                producer.send(topics.submissions, key=_family_key(i).encode(), value=json.dumps(doc).encode())
            )
        submitted = {_family_key(i): f.get(timeout=30).partition for i, f in enumerate(futures)}
    finally:
        producer.close()
    worker = start_worker(bootstrap, topics, tmp_path / "state", master_file, f"copart-{uuid.uuid4().hex[:6]}")
    workers.append(worker)
    families = records_until(bootstrap, topics.families, lambda rs: len(compacted_state(rs)) == FAMILIES, worker)
    want_members = FAMILIES * MEMBERS_PER_FAMILY
    members = records_until(bootstrap, topics.members, lambda rs: len(compacted_state(rs)) == want_members, worker)

    family_partition = {r.key.decode(): r.partition for r in families if r.key is not None}
    assert len(family_partition) == FAMILIES
    assert len(set(family_partition.values())) == 4  # the keys really are spread over all 4 partitions
    misplaced = [r.key for r in members if r.key is not None and r.partition != family_partition[r.key.decode()[:22]]]
    assert misplaced == []
    assert len(members) >= want_members
    # Families sit where the submissions were written, and the rule agrees.
    assert family_partition == submitted
    assert all(partition_for(r.key, 4) == r.partition for r in members if r.key is not None)
    # Without the rule, most members would sit elsewhere: the test can fail.
    default_moved = sum((murmur2(r.key) & 0x7FFFFFFF) % 4 != r.partition for r in members if r.key is not None)
    assert default_moved > len(members) // 2
    assert worker.stop() == 0, worker.log_tail()
