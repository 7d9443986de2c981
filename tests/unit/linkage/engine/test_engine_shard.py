"""A shard of the master (some districts, plus a global index) decides exactly as the whole master does.

Generated world: the engine holds half the districts; the queries are the survey members of those
districts (as the linker's partitions route them) plus movers: master persons of the OTHER half whose
survey record names a village of this half (with their NIK, or without it: name and birth date only).
Every decision (matched master id, probability, weight, runner-up, candidate count, band) must equal the
full engine's, before and after master updates (a move in, a move out, a new person, a removal).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from engine_helpers import members_model

from linkage.engine import BandThresholds, LinkageEngine, LinkDecision
from linkage.engine.errors import EngineError
from linkage.engine.index_store import index_cached, open_index, save_index
from linkage.engine.keys import value_hashes
from linkage.engine.shard import GlobalIndex, MasterShard, TableRows, global_rules, shard_layout
from linkage.normalise.prepare import prepare_table

BATCH = 1_000


def _engine() -> LinkageEngine:
    return LinkageEngine.from_model_json(
        members_model(), BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from services.world import load_world_source
    from synthetic.profile import NoiseProfile
    from synthetic.world import generate_world

    folder: Path = tmp_path_factory.mktemp("world")
    generate_world(folder, persons=12_000, seed=41, profile=NoiseProfile.hard())
    master, members = load_world_source(str(folder), "members")
    full = _engine()
    prepared = full.master.prepare(master)
    full.master.load_prepared(prepared)
    districts = sorted(d for d in pc.unique(prepared["district_code"]).to_pylist() if d is not None)
    mine, theirs = set(districts[::2]), set(districts[1::2])
    assert mine and theirs
    member_district = pc.utf8_slice_codeunits(members["village_code"], 0, 6).to_pylist()
    local = members.filter(pa.array([d in mine for d in member_district]))
    # movers: master persons of the other half, surveyed in a village of this half
    rnd = random.Random(5)
    villages = sorted({v for v in local["village_code"].to_pylist() if v})
    rows = master.to_pylist()
    others = [r for r in rows if r["village_code"] and r["village_code"][:6] in theirs]
    movers = []
    for i, person in enumerate(rnd.sample(others, 120)):
        record = {c: person.get(c) for c in local.column_names if c in person and c != "relationship"}
        record.update(record_id=f"mover-{i:03d}", village_code=rnd.choice(villages), kk_number=None)
        if i % 2:  # found by name key + birth date only
            record["nik"] = None
        movers.append(record)
    queries = pa.concat_tables([local, pa.Table.from_pylist(movers, schema=local.schema)])
    return {
        "master": master,
        "prepared": prepared,
        "full": full,
        "mine": mine,
        "queries": queries,
        "movers": movers,
    }


def _sharded(world: dict[str, Any]) -> LinkageEngine:
    engine = _engine()
    index = GlobalIndex(engine.parameters, TableRows(shard_layout(world["prepared"])))
    engine.master.load_shard(MasterShard(index, sorted(world["mine"])))
    return engine


def _link(engine: LinkageEngine, queries: pa.Table) -> list[LinkDecision]:
    out: list[LinkDecision] = []
    for start in range(0, queries.num_rows, BATCH):
        out.extend(engine.link(queries.slice(start, BATCH)))
    return out


def _same(full: list[LinkDecision], sharded: list[LinkDecision]) -> None:
    assert len(full) == len(sharded)
    differ = [
        (f.record_id, f.master_record_id, s.master_record_id, f.match_probability, s.match_probability)
        for f, s in zip(full, sharded, strict=True)
        if (f.master_record_id, f.match_probability, f.match_weight, f.runner_up_match_weight, f.band)
        != (s.master_record_id, s.match_probability, s.match_weight, s.runner_up_match_weight, s.band)
        or f.candidate_count != s.candidate_count
        or f.explanation != s.explanation
    ]
    assert differ == []


def test_global_rules_are_the_region_free_ones() -> None:
    rules = _engine().parameters.blocking_rules
    found = {tuple(right for _, right in rule) for rule in global_rules(rules)}
    assert found == {("nik",), ("name_key", "birth_date"), ("kk_number",)}


def test_shard_holds_fewer_rows_and_decides_as_the_whole_master(world: dict[str, Any]) -> None:
    sharded = _sharded(world)
    held = len(sharded.master)
    assert held < 0.7 * len(world["full"].master)
    full_decisions = _link(world["full"], world["queries"])
    shard_decisions = _link(sharded, world["queries"])
    _same(full_decisions, shard_decisions)
    shard = sharded.master.shard
    assert shard is not None and shard.stats.fetched > 0
    # the movers are linked to themselves, through rows fetched from the other half
    by_id = {d.record_id: d for d in shard_decisions}
    master_ids = world["master"]["record_id"].to_pylist()
    niks = world["master"]["nik"].to_pylist()
    nik_to_id = dict(zip(niks, master_ids, strict=True))
    truth = {m["record_id"]: nik_to_id.get(m["nik"]) for m in world["movers"] if m["nik"]}
    linked = sum(by_id[rid].master_record_id == mid for rid, mid in truth.items())
    assert linked >= 0.9 * len(truth)
    assert shard.stats.regions_on_demand == 0  # every query's district is held


def test_records_only_a_regional_rule_finds_link_in_their_shard(world: dict[str, Any]) -> None:
    """Queries whose chosen master row shares no region-free key with them (found by a region rule
    only) link in their own shard as in the whole master."""
    full: LinkageEngine = world["full"]
    queries = world["queries"]
    decisions = _link(full, queries)
    rules = full.parameters.blocking_rules
    wanted = [j for j, rule in enumerate(rules) if rule in global_rules(rules)]
    master_rows = {rid: i for i, rid in enumerate(world["prepared"]["record_id"].to_pylist())}
    q_hashes, q_valid = full.keys.matrix(prepare_table(queries), 0)
    m_hashes, m_valid = full.keys.matrix(world["prepared"], 1)
    regional_only = []
    for i, d in enumerate(decisions):
        if d.master_record_id is None or d.band.value != "auto_link":
            continue
        row = master_rows[d.master_record_id]
        shared = [j for j in wanted if q_valid[i, j] and m_valid[row, j] and q_hashes[i, j] == m_hashes[row, j]]
        if not shared:
            regional_only.append(i)
    assert len(regional_only) >= 5
    shard_decisions = _link(_sharded(world), queries)
    for i in regional_only:
        assert shard_decisions[i].master_record_id == decisions[i].master_record_id
        assert shard_decisions[i].match_probability == decisions[i].match_probability


def test_updates_reach_the_index_and_the_shard(world: dict[str, Any]) -> None:
    full = _engine()
    full.master.load_prepared(world["prepared"])
    sharded = _sharded(world)
    master: pa.Table = world["master"]
    mine = world["mine"]
    rows = master.to_pylist()
    villages_mine = sorted({r["village_code"] for r in rows if r["village_code"] and r["village_code"][:6] in mine})
    villages_theirs = sorted(
        {r["village_code"] for r in rows if r["village_code"] and r["village_code"][:6] not in mine}
    )
    movers = {m["nik"] for m in world["movers"] if m["nik"]}
    moving_in = next(r for r in rows if r["nik"] in movers)
    moving_out = next(r for r in rows if r["village_code"] and r["village_code"][:6] in mine)
    updates: list[dict[str, Any]] = [
        {**moving_in, "village_code": villages_mine[0], "kk_number": "3201019999990001"},
        {**moving_out, "village_code": villages_theirs[0]},
        {**rows[7], "record_id": "9999999999990001", "nik": "9999999999990001", "village_code": villages_mine[1]},
        # a name change in the TF column: the whole master's counts move in both engines
        {**rows[11], "full_name": "SITI AMINAH"},
    ]
    for engine in (full, sharded):
        for update in updates:
            engine.master.upsert(update)
        assert engine.master.remove(str(rows[3]["record_id"]))
    held = sharded.master.prepared
    assert held.has(str(moving_in["record_id"])) and not held.has(str(moving_out["record_id"]))
    assert held.has("9999999999990001") and not held.has(str(rows[3]["record_id"]))
    # survey records of the updated people, in this half's villages
    extra = [
        {
            **{c: u.get(c) for c in world["queries"].column_names if c in u and c != "relationship"},
            "record_id": f"update-{i}",
            "village_code": villages_mine[2],
        }
        for i, u in enumerate([*updates, rows[3]])
    ]
    queries = pa.concat_tables([world["queries"], pa.Table.from_pylist(extra, schema=world["queries"].schema)])
    full_decisions = _link(full, queries)
    _same(full_decisions, _link(sharded, queries))
    by_id = {d.record_id: d for d in full_decisions}
    assert by_id["update-0"].master_record_id == str(moving_in["record_id"])
    assert by_id["update-1"].master_record_id == str(moving_out["record_id"])  # fetched back by NIK
    assert by_id["update-4"].master_record_id != str(rows[3]["record_id"])  # removed everywhere


def test_regions_added_later_in_bulk(world: dict[str, Any]) -> None:
    sharded = _sharded(world)
    shard = sharded.master.shard
    assert shard is not None
    before = len(sharded.master)
    others = sorted(set(shard.index.regions) - world["mine"])
    added = shard.add_regions(others[:3])
    assert added > 0 and len(sharded.master) == before + added
    assert shard.add_regions(others[:3]) == 0  # already held: nothing twice
    # a record of a district the shard does not hold brings that district in (a wrong routing or region)
    stray = world["master"].filter(pc.equal(pc.utf8_slice_codeunits(world["master"]["village_code"], 0, 6), others[5]))
    record = {c: stray.column(c)[0].as_py() for c in world["queries"].column_names if c in stray.column_names}
    record.update(record_id="stray", nik=None, relationship=None)
    queries = pa.concat_tables([world["queries"], pa.Table.from_pylist([record], schema=world["queries"].schema)])
    _same(_link(world["full"], queries), _link(sharded, queries))
    assert shard.stats.regions_on_demand == 1 and others[5] in shard.regions
    assert np.all(np.diff(shard.index.region_index(np.arange(shard.index.size))) >= 0)


@pytest.mark.parametrize("appended", [10, 5_000])
def test_rule_index_extend_finds_what_a_fresh_build_finds(appended: int) -> None:
    """Few appended rows go to the dictionary, many are merged into the sorted keys: same pairs."""
    from linkage.engine.blocking import RuleIndex

    rng = np.random.default_rng(3)
    first = [rng.integers(-1, 300, 20_000).astype(np.int32), rng.integers(0, 50, 20_000).astype(np.int32)]
    more = [rng.integers(-1, 300, appended).astype(np.int32), rng.integers(0, 50, appended).astype(np.int32)]
    grown = RuleIndex(first)
    grown.extend(np.arange(20_000, 20_000 + appended, dtype=np.int64), more)
    fresh = RuleIndex([np.concatenate([a, b]) for a, b in zip(first, more, strict=True)])
    queries = [rng.integers(-1, 300, 500).astype(np.int32), rng.integers(0, 50, 500).astype(np.int32)]

    def pairs(index: RuleIndex) -> set[tuple[int, int]]:
        q, r = index.lookup(queries)
        return set(zip(q.tolist(), r.tolist(), strict=True))

    assert pairs(grown) == pairs(fresh) and len(pairs(fresh)) > 100


# --- the global index kept in files, memory-mapped (linkage.engine.index_store) -------------------------


def _answers(index: GlobalIndex, world: dict[str, Any]) -> dict[str, Any]:
    """What an index answers: rows found for the queries' keys, rows of ids, term counts, regions."""
    hashes, valid = index.keys.matrix(prepare_table(world["queries"]), 0)
    ids = [*world["master"]["record_id"].to_pylist()[::97], "no-such-id"]
    counts = {}
    for name, frequency in index.frequencies.items():
        query_hashes, ok = value_hashes(world["prepared"][name])
        counts[name] = (frequency.non_null, frequency.count(query_hashes[ok]).tolist())
    return {
        "found": index.lookup(hashes, valid).tolist(),
        "ids": [index.row_of(str(rid)) for rid in ids],
        "counts": counts,
        "regions": index.regions,
        "rows_of_region": [index.rows_of_region(r).tolist() for r in index.regions],
        "region_index": index.region_index(np.arange(index.size)).tolist(),
        "entries": index.entries,
        "nbytes": index.nbytes,
    }


def test_index_reopened_from_its_files_answers_as_the_built_one(world: dict[str, Any], tmp_path: Path) -> None:
    engine = _engine()
    rows = TableRows(shard_layout(world["prepared"]))
    built = GlobalIndex(engine.parameters, rows)
    stamp = {"bytes": 1, "mtime_ns": 2}
    save_index(built, tmp_path / "index", stamp)
    opened = open_index(engine.parameters, rows, tmp_path / "index", stamp)
    assert opened is not None
    mapped = opened.arrays()
    assert set(mapped) == set(built.arrays()) and all(isinstance(a, np.memmap) for a in mapped.values())
    fresh = _answers(built, world)
    assert len(fresh["found"]) > 1_000 and fresh["ids"][-1] is None and None not in fresh["ids"][:-1]
    assert _answers(opened, world) == fresh
    # an engine sharded over the opened index decides as the whole master, before and after an update
    sharded = _engine()
    sharded.master.load_shard(MasterShard(opened, sorted(world["mine"])))
    _same(_link(world["full"], world["queries"]), _link(sharded, world["queries"]))
    person = world["master"].slice(5, 1).to_pylist()[0]
    sharded.master.upsert({**person, "full_name": "SITI AMINAH"})
    assert opened.row_of(str(person["record_id"])) == opened.size  # the update is after the files' rows
    sharded.master.upsert({**person, "record_id": "9999999999990002", "nik": "9999999999990002"})
    # saved again after updates, the files hold the index as built (updates live in memory only)
    save_index(opened, tmp_path / "again", stamp)
    reopened = open_index(engine.parameters, rows, tmp_path / "again", stamp)
    assert reopened is not None and _answers(reopened, world) == fresh
    assert not any(isinstance(a, np.memmap) and a.flags.writeable for a in opened.arrays().values())


def test_a_corrupt_or_partial_index_file_is_rebuilt_not_trusted(world: dict[str, Any], tmp_path: Path) -> None:
    engine = _engine()
    rows = TableRows(shard_layout(world["prepared"]))
    folder, stamp = tmp_path / "index", {"bytes": 10, "mtime_ns": 20}
    fresh = _answers(GlobalIndex(engine.parameters, rows), world)
    first, reused = index_cached(engine.parameters, rows, folder, stamp)
    assert not reused and _answers(first, world) == fresh
    again, reused = index_cached(engine.parameters, rows, folder, stamp)
    assert reused and _answers(again, world) == fresh

    def corrupt_then_reopen(damage: Any, verify: str = "checksums") -> None:
        damage()
        assert open_index(engine.parameters, rows, folder, stamp, verify=verify) is None  # type: ignore[arg-type]
        rebuilt, reused = index_cached(engine.parameters, rows, folder, stamp)
        assert not reused and _answers(rebuilt, world) == fresh
        assert open_index(engine.parameters, rows, folder, stamp) is not None

    keys = folder / "rule-0-keys.npy"

    def truncate() -> None:  # a partial file
        keys.write_bytes(keys.read_bytes()[: keys.stat().st_size // 2])

    def flip() -> None:  # same size, changed bytes: only the checksum sees it
        data = bytearray(keys.read_bytes())
        data[len(data) // 2] ^= 0xFF
        keys.write_bytes(bytes(data))

    corrupt_then_reopen(truncate, verify="sizes")
    corrupt_then_reopen(flip)
    corrupt_then_reopen(lambda: (folder / "id-rows.npy").unlink())
    corrupt_then_reopen(lambda: (folder / "manifest.json").write_text("{", encoding="utf-8"))
    # another layout file (rebuilt): the stored index is stale
    assert open_index(engine.parameters, rows, folder, {**stamp, "mtime_ns": 21}) is None
    assert open_index(engine.parameters, rows, folder, stamp, id_column="nik") is None
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.stale"))


def test_dropped_regions_leave_the_engine_and_a_later_assignment_loads_them_again(world: dict[str, Any]) -> None:
    full = _engine()
    full.master.load_prepared(world["prepared"])
    sharded = _sharded(world)
    shard = sharded.master.shard
    assert shard is not None
    queries: pa.Table = world["queries"]
    _same(_link(full, queries), _link(sharded, queries))  # fetches rows of the other half too
    assert len(shard._cached) > 0
    mine = sorted(world["mine"])
    dropped, kept = mine[: len(mine) // 2], mine[len(mine) // 2 :]
    district = world["prepared"]["district_code"].to_pylist()
    rows_of = {d: sum(1 for x in district if x == d) for d in mine}
    held_before = len(sharded.master)
    gone = sharded.master.drop_regions(dropped)
    assert len(sharded.master) == sum(rows_of[d] for d in kept)  # fetched rows of other regions go too
    assert gone == held_before - len(sharded.master) and gone >= sum(rows_of[d] for d in dropped)
    assert sorted(shard.regions, key=str) == kept and not any(shard.holds_region(d) for d in dropped)
    assert sharded.master.drop_regions(dropped) == 0  # not held: nothing
    # the kept districts' records decide as before
    query_district = pc.utf8_slice_codeunits(queries["village_code"], 0, 6).to_pylist()
    kept_queries = queries.filter(pa.array([d in set(kept) for d in query_district]))
    assert kept_queries.num_rows > 100
    _same(_link(full, kept_queries), _link(sharded, kept_queries))
    assert shard.stats.regions_on_demand == 0
    # a master update of a dropped district meanwhile: the index keeps it; the engine holds it when the
    # district comes back (a later assignment), and every decision is the whole master's again
    person = next(r for r in world["master"].to_pylist() if r["village_code"] and r["village_code"][:6] in dropped)
    for engine in (full, sharded):
        engine.master.upsert({**person, "full_name": "SITI AMINAH"})
    assert not sharded.master.prepared.has(str(person["record_id"]))
    assert shard.add_regions(dropped) == sum(rows_of[d] for d in dropped)
    assert sharded.master.prepared.has(str(person["record_id"]))
    record = {c: person.get(c) for c in queries.column_names if c in person and c != "relationship"}
    again = pa.concat_tables(
        [queries, pa.Table.from_pylist([{**record, "record_id": "updated"}], schema=queries.schema)]
    )
    full_decisions = _link(full, again)
    _same(full_decisions, _link(sharded, again))
    assert full_decisions[-1].master_record_id == str(person["record_id"])


# --- the row store: scattered rows read row by row (RowBlobs) -----------------------------------------


class _CountingRows(TableRows):
    """`TableRows` that counts the rows taken from the columnar layout."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__(table)
        self.taken = 0

    def take(self, rows: Any) -> pa.Table:
        self.taken += len(rows)
        return super().take(rows)


def test_row_store_gives_the_rows_the_columnar_layout_gives() -> None:
    import datetime as dt

    from linkage.engine.shard import RowBlobs

    n = 5_000
    rng = random.Random(8)
    table = pa.table(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "name": [rng.choice([None, "", "SITI AMINAH", "ÑOÑO  ", "a|b;c"]) for _ in range(n)],
            "year": pa.array([rng.choice([None, 0, -3, 1985, 2**40]) for _ in range(n)], type=pa.int64()),
            "head": pa.array([rng.choice([None, True, False]) for _ in range(n)], type=pa.bool_()),
            "born": pa.array([rng.choice([None, dt.date(1950, 2, 28), dt.date(2001, 12, 31)]) for _ in range(n)]),
        }
    )
    layout = TableRows(pa.Table.from_batches(table.to_batches(max_chunksize=700)))
    blobs = RowBlobs.build(layout, chunk_rows=1_000)
    assert blobs is not None and len(blobs.offsets) == n + 1
    for rows in ([0], [n - 1], [4_321, 3, 3, 2_000, 999, 1_000], list(range(0, n, 7))):
        picked = np.array(rows, dtype=np.int64)
        assert blobs.take(picked).equals(layout.take(picked))
    # a value holding a separator, or a column type the store cannot keep exactly: no store
    assert RowBlobs.build(TableRows(pa.table({"a": ["x", "y\x1fz"]}))) is None
    assert RowBlobs.build(TableRows(pa.table({"a": ["x", "\x1e"]}))) is None
    assert RowBlobs.build(TableRows(pa.table({"a": ["x", "y"], "f": [1.5, 2.0]}))) is None


def test_rows_of_other_regions_are_fetched_from_the_row_store(world: dict[str, Any], tmp_path: Path) -> None:
    engine = _engine()
    rows = _CountingRows(shard_layout(world["prepared"]))
    index = GlobalIndex(engine.parameters, rows)
    assert index.has_row_store
    stamp = {"bytes": 3, "mtime_ns": 4}
    save_index(index, tmp_path / "index", stamp)
    opened = open_index(engine.parameters, rows, tmp_path / "index", stamp)
    assert opened is not None and opened.has_row_store and isinstance(opened.arrays()["row-bytes"], np.memmap)
    sharded = _engine()
    sharded.master.load_shard(MasterShard(opened, sorted(world["mine"])))
    held_rows = rows.taken  # the held regions come from the columnar layout
    assert held_rows == len(sharded.master)
    _same(_link(world["full"], world["queries"]), _link(sharded, world["queries"]))
    shard = sharded.master.shard
    assert shard is not None and shard.stats.fetched > 0
    assert rows.taken == held_rows  # every fetched row came from the row store
    # a row store that does not cover the master is not used: the index is rebuilt
    arrays = dict(opened.arrays())
    arrays["row-offsets"] = arrays["row-offsets"][:-1]
    with pytest.raises(EngineError, match="row store"):
        GlobalIndex.from_arrays(engine.parameters, rows, opened.described(), arrays)


def test_fetched_rows_are_bounded_and_decisions_stay_the_whole_masters(world: dict[str, Any]) -> None:
    engine = _engine()
    index = GlobalIndex(engine.parameters, TableRows(shard_layout(world["prepared"])))
    engine.master.load_shard(MasterShard(index, sorted(world["mine"]), fetched_rows_max=8))
    shard = engine.master.shard
    assert shard is not None
    held = len(engine.master)
    most_per_batch = 0
    full, sharded = [], []
    for start in range(0, world["queries"].num_rows, 100):  # small batches: several fetches
        batch = world["queries"].slice(start, 100)
        fetched = shard.stats.fetched
        sharded.extend(engine.link(batch))
        full.extend(world["full"].link(batch))
        most_per_batch = max(most_per_batch, shard.stats.fetched - fetched)
        # never more fetched rows than the bound, or than one batch needs
        assert len(engine.master) - held <= max(8, most_per_batch)
    _same(full, sharded)
    assert shard.stats.resets > 0 and shard.stats.fetched_dropped > 0
    assert shard.stats.fetched > 8  # the movers' rows were fetched, more of them than the bound
    with pytest.raises(EngineError, match="at least 1"):
        MasterShard(index, [], fetched_rows_max=0)


@pytest.mark.parametrize("size", [0, 1, 7, 5_000, 200_000])
def test_hash_directory_finds_the_ranges_a_binary_search_finds(size: int) -> None:
    from linkage.engine.shard import SortedHashes

    rng = np.random.default_rng(size)
    keys = rng.integers(0, 2**63, size, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    if size > 10:  # runs of equal keys, as a common name key and birth date gives
        keys[: size // 10] = keys[0]
        keys[size // 10 : size // 5] = keys[size // 2]
    keys = np.sort(keys)
    extremes = np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64)
    queries = np.concatenate([keys[rng.integers(0, max(size, 1), 300)] if size else keys, extremes, keys[::7] + 1])
    found = SortedHashes(keys)
    lo, hi = found.ranges(queries)
    assert lo.tolist() == np.searchsorted(keys, queries, side="left").tolist()
    assert hi.tolist() == np.searchsorted(keys, queries, side="right").tolist()
    assert SortedHashes(keys, found.directory).ranges(queries)[1].tolist() == hi.tolist()
    # about 8 keys per bucket: the directory is small beside the keys
    assert len(found.directory) - 1 <= max(2, size // 4)
    with pytest.raises(EngineError, match="does not fit"):
        SortedHashes(keys, found.directory[:-1])
    with pytest.raises(EngineError, match="does not fit"):
        SortedHashes(keys[: size // 2], found.directory) if size > 1 else SortedHashes(keys, np.zeros(4, np.uint32) + 9)
