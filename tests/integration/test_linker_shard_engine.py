"""The linker's engine with the master sharded by region gives the same outputs as with the whole master.

A generated world and a trained model (the shared integration fixture); in a copy of the world some
surveyed people's Dukcapil rows are moved to a district of ANOTHER submissions partition (they moved
since the snapshot, or the master has the wrong region). A sharded `EngineMemberLinker` holds the
districts of partitions 0 and 1 only (of 4, as an instance owning half the partitions); every family
submission of those partitions goes through the real pipeline with both engines: the output records
must be byte-identical, the movers linked to their own master person (found through the global index),
and after a master update that moves one of them again, still identical. In-process, no broker.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from contracts.decode import ContractViolation, decode_family_submission
from contracts.linkage_outputs import LinkedMember
from contracts.partitioning import partition_for
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from integration.master import MasterPerson
from linkage.records import family_key_string
from services.linker.engine_adapter import load_village_crosswalk
from services.linker.engine_link import EngineMemberLinker
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import LinkerSettings
from services.linker.store import LinkStore
from tests.support.linking import link_batch

pytestmark = [pytest.mark.slow]

IDS = PersonIds(b"engine-shard-test")
PARTITIONS = 4
MINE = {0, 1}


def _mover_world(world: Path, out: Path) -> tuple[dict[str, str], list[str]]:
    """A copy of `world` whose master puts some surveyed people in a district of another partition:
    (member key -> true NIK of the movers, the villages of this half's districts)."""
    out.mkdir()
    for name in ("crosswalk.parquet", "dtks.parquet", "bpjs.parquet", "submissions.jsonl"):
        shutil.copy(world / name, out / name)
    crosswalk = pq.read_table(world / "crosswalk.parquet").to_pylist()
    districts = {r["bps_code"]: r["kemendagri_code"] for r in crosswalk if r["level"] == "district"}
    villages = [r["kemendagri_code"] for r in crosswalk if r["level"] == "village"]
    theirs = {k for b, k in districts.items() if partition_for(b.encode(), PARTITIONS) not in MINE}
    far_villages = sorted(v for v in villages if v[:6] in theirs)
    near_villages = sorted(v for v in villages if v[:6] in set(districts.values()) - theirs)
    assert far_villages, "the world needs districts on both halves of the partitions"
    truth = pq.read_table(world / "truth.parquet").to_pylist()
    surveyed = [
        t
        for t in truth
        if t["source"] == "member"
        and t["true_nik"]
        and partition_for(t["member_key"][:7].encode(), PARTITIONS) in MINE
        and t["noise"] == ""
    ]
    rnd = random.Random(3)
    chosen = rnd.sample(surveyed, 25)
    movers = {t["member_key"]: t["true_nik"] for t in chosen}
    population = pq.read_table(world / "population.parquet")
    moved_to = {nik: rnd.choice(far_villages) for nik in movers.values()}
    villages_now = [
        moved_to.get(n, v)
        for n, v in zip(population["nik"].to_pylist(), population["village_code"].to_pylist(), strict=True)
    ]
    index = population.schema.get_field_index("village_code")
    population = population.set_column(
        index, "village_code", pa.array(villages_now, type=population.schema.field(index).type)
    )
    pq.write_table(population, out / "population.parquet")
    return movers, near_villages


def _submissions(world: Path) -> list[FamilySubmission]:
    subs = []
    for line in (world / "submissions.jsonl").read_text().splitlines():
        key = family_key_string(json.loads(line)["family_key"]).encode()
        if partition_for(key, PARTITIONS) not in MINE:
            continue
        try:
            subs.append(decode_family_submission(line.encode(), key=key))
        except ContractViolation:
            continue
    return subs


def _run(linker: EngineMemberLinker, world: Path, model: Path, subs: list[FamilySubmission]) -> dict[str, bytes]:
    crosswalk = load_village_crosswalk(LinkerSettings(world_dir=world, model_path=model))
    pipeline = SubmissionLinker(linker, IDS, OutputTopics("m", "f", "r"), village_crosswalk=crosswalk)
    store = LinkStore(":memory:")
    out: dict[str, bytes] = {}
    for start in range(0, len(subs), 40):  # batches of families, as the linker's micro-batches
        result = link_batch(pipeline, store, subs[start : start + 40])
        store.apply(result.update)
        for rec in result.records:
            assert rec.key is not None
            name = f"{rec.topic}:{rec.key.decode()}"
            if rec.value is None:
                out.pop(name, None)
            else:
                out[name] = rec.value
    return out


def test_a_shard_of_half_the_partitions_links_movers_as_the_whole_master(
    world_and_model: tuple[Path, Path], tmp_path: Path
) -> None:
    world, model = world_and_model
    moved = tmp_path / "world"
    movers, near_villages = _mover_world(world, moved)
    subs = _submissions(moved)
    full = EngineMemberLinker.from_files(moved, model, cache_dir=tmp_path / "full")
    sharded = EngineMemberLinker.from_files(moved, model, cache_dir=tmp_path / "shard", sharded=True)
    assert sharded.sharded and not full.sharded
    added = sharded.hold_partitions(MINE, PARTITIONS)
    assert 0 < added < 0.8 * len(full._engine.master)
    assert sharded.hold_partitions(MINE, PARTITIONS) == 0  # held already

    expected = _run(full, moved, model, subs)
    got = _run(sharded, moved, model, subs)
    assert got == expected
    shard = sharded._engine.master.shard
    assert shard is not None and shard.stats.fetched >= 0.8 * len(movers)
    linked = {
        k: LinkedMember.model_validate_json(v).matched_nik
        for name, v in got.items()
        if name.startswith("m:") and (k := name[2:]) in movers
    }
    assert sum(linked[k] == nik for k, nik in movers.items() if k in linked) >= 0.8 * len(movers)

    # a master update (`moved`) that brings one of them into this half: both engines follow it
    key, nik = sorted(movers.items())[0]
    population = pq.read_table(moved / "population.parquet")
    (row,) = population.filter(pc.equal(population["nik"], nik)).to_pylist()
    person = MasterPerson(
        nik=nik,
        kk_number=str(row["kk_number"]),
        full_name=str(row["full_name"]),
        sex=str(row["sex"]),
        birth_date=row["birth_date"].isoformat(),
        village_code=near_villages[0],
        address=str(row["address"]),
        deceased=False,
    )
    again = [s for s in subs if s.family_key.key == key.split("-")[0]]
    assert len(again) >= 1
    for linker in (full, sharded):
        linker.upsert_master(person)
    assert sharded._engine.master.prepared.has(nik)  # its new district is held: a local row now
    assert _run(sharded, moved, model, again) == _run(full, moved, model, again)

    # a rebalance leaves this instance one of its partitions: the other's districts leave the engine
    # (as the linker's assignment callback does), and come back when it is assigned again
    held = len(sharded._engine.master)
    kept = {min(MINE)}
    assert sharded.hold_partitions(kept, PARTITIONS, only=True) == 0
    assert sharded.rows_dropped > 0 and len(sharded._engine.master) == held - sharded.rows_dropped
    revoked = sharded._regions_of(set(MINE) - kept, PARTITIONS)
    assert revoked and not any(shard.holds_region(r) for r in revoked)
    assert all(shard.holds_region(r) for r in sharded._regions_of(kept, PARTITIONS))
    assert sharded.hold_partitions(MINE, PARTITIONS, only=True) > 0
    assert _run(sharded, moved, model, subs) == _run(full, moved, model, subs)
    # what the linker's metrics read (linkage_shard_*)
    figures = sharded.shard_stats()
    assert figures is not None and full.shard_stats() is None
    assert figures["rows_held"] == len(sharded._engine.master) and figures["districts"] == len(shard.regions)
    assert figures["rows_fetched"] == shard.stats.fetched > 0 and figures["rows_dropped"] == sharded.rows_dropped
    assert figures["lookups"] == shard.stats.lookups > 0 and figures["lookup_seconds"] > 0
