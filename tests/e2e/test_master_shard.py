"""The master sharded by region, with the real broker: two linker instances, each holding the master rows
of the districts of its own submissions partitions (REGSOSEK_LINKER_MASTER_SHARDING), link movers.

The e2e world is copied and some surveyed people's Dukcapil rows are put in a district of ANOTHER
partition (one or two partitions further on, so that whichever two partitions an instance owns, some
movers' master rows are held by the other instance). Both instances run with master updates on. The
whole world is streamed; then `moved` and `died` changes of movers are produced. Every member and family
record and every update event must equal the in-process run of one engine holding the whole master; and
an instance that only ever held two partitions' districts must have linked movers whose master rows
live in districts of the other two (found through the global index).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from contracts.linkage_outputs import LinkedMember
from contracts.partitioning import partition_for, producer_partitioner
from contracts.topics import POPULATION_CHANGES, UPDATES
from integration.ids import PersonIds
from services.kafka.io import compacted_state, read_topic, values_by_key
from services.linker.settings import DEV_PERSON_ID_KEY
from tests.support.broker import RunningBroker
from tests.support.e2e import E2EWorld, private_change_topics, private_topics
from tests.support.linking import ReferenceRun
from tests.support.processes import until
from tools.pipeline.linker_process import LinkerProcess
from tools.pipeline.outcome import wait_for_members

pytestmark = [pytest.mark.broker, pytest.mark.slow]

IDS = PersonIds(DEV_PERSON_ID_KEY.encode())
PARTITIONS = 4
CHANGE_MS = 1_700_000_000_321
HELD = re.compile(r"master shard: \d+ rows added for partitions \[([\d, ]+)\]")


def _mover_world(world: Path, out: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The world with movers: (member key -> master NIK, Kemendagri district -> partition)."""
    out.mkdir()
    for name in ("crosswalk.parquet", "dtks.parquet", "bpjs.parquet", "submissions.jsonl", "truth.parquet"):
        shutil.copy(world / name, out / name)
    crosswalk = pq.read_table(world / "crosswalk.parquet").to_pylist()
    part_of = {
        r["kemendagri_code"]: partition_for(r["bps_code"].encode(), PARTITIONS)
        for r in crosswalk
        if r["level"] == "district"
    }
    villages = sorted(r["kemendagri_code"] for r in crosswalk if r["level"] == "village")
    truth = pq.read_table(world / "truth.parquet").to_pylist()
    uses: dict[str, int] = defaultdict(int)
    for t in truth:
        if t["source"] == "member" and t["true_nik"]:
            uses[t["true_nik"]] += 1
    clean = [t for t in truth if t["source"] == "member" and t["true_nik"] and t["noise"] == ""]
    clean = [t for t in clean if uses[t["true_nik"]] == 1]
    rnd = random.Random(7)
    movers: dict[str, str] = {}
    moved_to: dict[str, str] = {}
    for i, t in enumerate(rnd.sample(clean, 40)):
        target = (partition_for(t["member_key"][:7].encode(), PARTITIONS) + 1 + i % 2) % PARTITIONS
        choices = [v for v in villages if part_of.get(v[:6]) == target]
        if choices:
            movers[t["member_key"]] = t["true_nik"]
            moved_to[t["true_nik"]] = rnd.choice(choices)
    population = pq.read_table(world / "population.parquet")
    now = [
        moved_to.get(n, v)
        for n, v in zip(population["nik"].to_pylist(), population["village_code"].to_pylist(), strict=True)
    ]
    at = population.schema.get_field_index("village_code")
    population = population.set_column(at, "village_code", pa.array(now, type=population.schema.field(at).type))
    pq.write_table(population, out / "population.parquet")
    return movers, part_of


def _change(kind: str, row: dict[str, Any], change_id: str, village: str | None = None) -> bytes:
    birth = row["birth_date"]
    record = {
        "nik": row["nik"],
        "kk_number": row["kk_number"],
        "full_name": row["full_name"],
        "sex": row["sex"],
        "birth_date": birth.isoformat() if isinstance(birth, dt.date) else str(birth),
        "village_code": village or row["village_code"],
        "district_code": (village or row["village_code"])[:6],
        "address": row["address"],
        "status": "dead" if kind == "died" else "alive",
    }
    doc = {
        "schema_version": "1",
        "change": kind,
        "change_id": change_id,
        "effective_date": "2023-02-01",
        "record": record,
    }
    return json.dumps(doc).encode()


def _group_members(bootstrap: str, group: str) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (info,) = admin.describe_consumer_groups([group])
        return len(info.members) if info.state == "Stable" else None
    except KafkaError:
        return None
    finally:
        admin.close()


def test_two_sharded_instances_link_movers_and_their_changes_as_one_whole_master(
    kafka_broker: RunningBroker, e2e_world: E2EWorld, tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    world = tmp_path / "world"
    movers, part_of = _mover_world(e2e_world.world, world)
    assert len(movers) >= 30
    topics, group = private_topics(bootstrap)
    change_topics, updates_env = private_change_topics(bootstrap, group)
    population, updates_topic = change_topics[POPULATION_CHANGES], change_topics[UPDATES]
    env = {
        "REGSOSEK_LINKER_MASTER_SHARDING": "true",
        "REGSOSEK_LINKER_MASTER_SHARD_PARTITIONS": str(PARTITIONS),
        **updates_env,
    }

    def linker(name: str) -> LinkerProcess:
        return LinkerProcess(
            bootstrap=bootstrap,
            group=group,
            state_dir=tmp_path / name / "state",
            topics=topics,
            world_dir=world,
            model_path=e2e_world.model,
            link_store_dir=tmp_path / "link-store",
            log_path=tmp_path / f"{name}.log",
            extra_env=env,
        )

    a, b = linker("a"), linker("b")
    procs = [a, b]
    # The reference: one engine holding the whole (moved) master, in-process, same pipeline and applier.
    ref = ReferenceRun.from_files(world, e2e_world.model, tmp_path / "reference-cache", IDS)
    records = e2e_world.submissions.records
    ref.link(records)
    latest, expected = ref.latest, ref.updates
    linked_movers = {
        k: n
        for k, n in movers.items()
        if k in latest["m"] and LinkedMember.model_validate_json(latest["m"][k]).matched_nik == n
    }
    assert len(linked_movers) >= 0.8 * len(movers)
    before_changes = dict(latest["m"])

    # changes of movers: two move again (to a district of yet another partition), two die
    rows = {r["nik"]: r for r in pq.read_table(world / "population.parquet").to_pylist()}
    chosen = sorted(linked_movers.items())[:4]
    villages = sorted(v for v in (r["village_code"] for r in rows.values()) if v)
    changes = []
    for i, (key, nik) in enumerate(chosen):
        if i < 2:
            home = part_of[rows[nik]["village_code"][:6]]
            village = next(v for v in villages if part_of.get(v[:6]) not in (home, partition_for(key[:7].encode(), 4)))
            changes.append((f"moved-{i}", _change("moved", rows[nik], f"moved-{i}", village)))
        else:
            changes.append((f"died-{i}", _change("died", rows[nik], f"died-{i}")))
    ref.change([value for _, value in changes], CHANGE_MS)
    assert {k for k, _ in chosen} <= set(expected)  # each change concerns its mover: an update event

    try:
        until("two members in the group", lambda: _group_members(bootstrap, group) == 2, procs, 180)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", partitioner=producer_partitioner)
        try:
            for f in [producer.send(topics.submissions, key=k, value=v) for k, v in records]:
                f.get(timeout=60)
        finally:
            producer.close()
        wait_for_members(
            bootstrap,
            topics.members,
            e2e_world.submissions.expected_member_keys(),
            timeout_s=180,
            consumed_by=(group, topics.submissions),
        )
        until("members", lambda: compacted_state(read_topic(bootstrap, topics.members)) == before_changes, procs)

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            for f in [
                producer.send(population, key=k.encode(), value=v, partition=0, timestamp_ms=CHANGE_MS)
                for k, v in changes
            ]:
                f.get(timeout=30)
        finally:
            producer.close()

        def updates_done() -> bool:
            got = {k: set(vs) for k, vs in values_by_key(read_topic(bootstrap, updates_topic)).items()}
            return got == expected

        until("update events", updates_done, procs, 120)
        until("members", lambda: compacted_state(read_topic(bootstrap, topics.members)) == latest["m"], procs)
        until("families", lambda: compacted_state(read_topic(bootstrap, topics.families)) == latest["f"], procs)

        # an instance that held only two partitions' districts linked movers of the other two
        crossed = 0
        for proc in procs:
            held = {int(p) for line in HELD.findall(proc.log_text()) for p in line.split(",")}
            if len(held) != 2:
                continue  # it held every district for a while (it was alone in the group first)
            crossed += sum(
                partition_for(k[:7].encode(), PARTITIONS) in held and part_of[rows[n]["village_code"][:6]] not in held
                for k, n in linked_movers.items()
            )
        assert crossed >= 5, (a.log_tail(), b.log_tail())
        assert a.stop() == 0 and b.stop() == 0
    finally:
        for proc in procs:
            proc.stop()
