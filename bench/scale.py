"""Benchmark: does the real-time engine's per-record cost stay flat as the master grows?

    PYTHONPATH=$PWD .venv/bin/python bench/scale.py [--sizes 1000000,3000000,10000000] [--queries 20000]
        [--modes full,sharded] [--no-cold] [--model FOLDER]

The master grows the way a national one does: by regions. The size-1M master is the generated world of
bench/engine.py (regency 3603, seed 20261128, reused from .run/bench/ when there); each further million
is the population of another regency (3201, 3301, 3506, ... each its own seed and province;
population only, no survey), so villages keep their size. NIKs carry the district, so records of different regencies
do not collide (the few that do are dropped). The query records are the same in every size: the first
`--queries` survey members of the 3603 world.

For each size, in fresh processes (so each peak RSS is that phase's own):
- cold: engine ready from the master's population.parquet without the prepared cache (read, convert,
  normalise column-wise in one process, encode, index); peak RSS;
- engine: ready from the prepared-master cache (what a restarted instance pays); single-record p50 /
  p99 (wall and CPU); batch-1,000 records/s in one process (median of 3 passes); mean candidates per
  record; share of the query records in the master whose decision names their true person; peak RSS.
Then a table with the ratios to the first size (measured in the same run).

With `--modes sharded` (default: `full,sharded`), per size as well:
- shardprep: the prepared master, shard layout and global index files of the size, built once (cached;
  `linkage.engine.cache.load_shard_cached`), and how long that took;
- shard: one instance as the linker runs it with REGSOSEK_LINKER_MASTER_SHARDING: it holds the base
  regency's districts (about the same persons at every size) and the global index over the WHOLE master,
  memory-mapped; rows held, heap (anonymous) RSS and the resident pages of the index files at ready and
  after the queries, ready time, single-record p50/p99, batch-1,000 records per CPU-second on records
  never seen before (a stream: the rows other regions hold are fetched as they are found) and repeated
  (caches warm, nothing left to fetch), the global lookup + fetch per batch and the rows fetched, the
  share of candidate pairs found through the global index; and the ratio of the per-record CPU to the
  first size (flat = 1.00).

Everything is written under .run/scale/ (its own model, masters and prepared cache, so bench/engine.py's
cache is left alone); results in .run/scale/scale-results.json (`--results`). `--model` takes another
members model, e.g. one trained with other blocking rules (the engine blocks with its model.json's).
Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCALE_DIR = ROOT / ".run" / "scale"
BASE_WORLD = ROOT / ".run" / "bench" / "world-1000000-s20261128"
BASE_PERSONS = 1_000_000
# further regencies, each in its own province and none in Banten (3603's): the generator gives in-movers
# NIKs of other districts of the same province, which would collide with that province's natives
# (villages: 435, 284, 344, 260, 260, 215, 195, 177, 182; the base regency 3603 has 274)
EXTRA_REGENCIES = ("3201", "3301", "3506", "1101", "1801", "1201", "6101", "5301", "1301")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shard import _mapped_rss_mb, _rss_now_mb  # noqa: E402 (bench/shard.py: the same /proc readings)


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _master_path(size: int) -> Path:
    return SCALE_DIR / f"master-{size}" / "population.parquet"


# --- phases (each runs in a child process) -------------------------------------------------------------


def phase_master(args: argparse.Namespace) -> dict[str, Any]:
    """The base world (generated once) plus further regencies' populations up to `--size` persons."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from synthetic.population import generate_population, population_table
    from synthetic.profile import NoiseProfile
    from synthetic.regions import load_regency, neighbour_district_codes
    from synthetic.world import generate_world

    start = time.perf_counter()
    if not (BASE_WORLD / "submissions.jsonl").exists():
        generate_world(BASE_WORLD, persons=BASE_PERSONS, seed=20261128)
    out = _master_path(args.size)
    if out.exists():
        return {"generated_seconds": None, "persons": pq.read_metadata(out).num_rows}
    parts = [pq.read_table(BASE_WORLD / "population.parquet")]
    remaining = args.size - parts[0].num_rows
    for i, code in enumerate(EXTRA_REGENCIES):
        if remaining <= 0:
            break
        persons = min(BASE_PERSONS, remaining)
        cached = SCALE_DIR / "regencies" / f"population-{code}-{persons}-s{1000 + i}.parquet"
        if not cached.exists():
            region = load_regency(code)
            pop = generate_population(
                np.random.default_rng(1000 + i), region, persons, NoiseProfile(), neighbour_district_codes(region)
            )
            cached.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(population_table(pop, region), cached)
        parts.append(pq.read_table(cached))
        remaining -= persons
    if remaining > 0:
        raise SystemExit(f"error: at most {BASE_PERSONS * (1 + len(EXTRA_REGENCIES)):,} persons are configured")
    master = pa.concat_tables(parts)
    # the record id is the NIK: keep the first of any NIK two regencies both generated
    niks = master.column("nik").to_numpy(zero_copy_only=False)
    _, first = np.unique(niks, return_index=True)
    dropped = master.num_rows - len(first)
    if dropped:
        master = master.take(pa.array(np.sort(first)))
    del niks
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(master, out)
    return {
        "generated_seconds": time.perf_counter() - start,
        "persons": master.num_rows,
        "duplicate_niks_dropped": dropped,
        "regencies": int(pc.count_distinct(pc.utf8_slice_codeunits(master.column("village_code"), 0, 4)).as_py()),
    }


def phase_model(args: argparse.Namespace) -> dict[str, Any]:
    """A members model trained with this code's spec on bench/engine.py's 50,000-person training world."""
    from linkage.model.artefact import ModelArtefact, build_metadata, regularise, save_artefact, table_sha256
    from linkage.model.training import train_model
    from linkage.normalise.prepare import prepare_table
    from services.world import load_world_source
    from synthetic.world import generate_world

    train_world = ROOT / ".run" / "bench" / "train-world-50000-s7"
    if not (train_world / "population.parquet").exists():
        generate_world(train_world, persons=50_000, seed=7)
    master, records = load_world_source(str(train_world), "members")
    master_p, records_p = prepare_table(master), prepare_table(records)
    model = regularise(train_model(master_p, records_p, "members", max_pairs=2e6, seed=7))
    meta = build_metadata("members", table_sha256(master_p, records_p), training={"bench": "scale"})
    folder = save_artefact(ModelArtefact(model, meta), SCALE_DIR / "models", charts=False)
    return {"model": str(folder)}


def _ready_engine(args: argparse.Namespace) -> tuple[Any, float, bool]:
    from linkage.comparisons import SPEC_VERSION
    from linkage.engine import LinkageEngine
    from linkage.engine.cache import load_master_cached
    from linkage.normalise.prepare import prepare_table
    from linkage.records import population_records

    start = time.perf_counter()
    engine = LinkageEngine.from_artefact(args.model, preparer=prepare_table)
    hit = load_master_cached(
        engine,
        _master_path(args.size),
        cache_dir=SCALE_DIR / "prepared",
        version=f"spec-{SPEC_VERSION}",
        convert=population_records,
        processes=1,
    )
    return engine, time.perf_counter() - start, hit


def phase_cold(args: argparse.Namespace) -> dict[str, Any]:
    from linkage.comparisons import SPEC_VERSION
    from linkage.engine import LinkageEngine
    from linkage.engine.cache import prepared_cache_path

    probe = LinkageEngine.from_artefact(args.model)
    cache = prepared_cache_path(probe, _master_path(args.size), SCALE_DIR / "prepared", f"spec-{SPEC_VERSION}")
    cache.unlink(missing_ok=True)
    del probe
    engine, ready, hit = _ready_engine(args)
    assert not hit
    return {"ready_seconds": ready, "peak_rss_mb": _peak_rss_mb(), "master_rows": len(engine.master)}


def _time_singles(engine: Any, records: Any) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of linking each record alone."""
    wall: list[float] = []
    cpu: list[float] = []
    for i in range(records.num_rows):
        record = records.slice(i, 1)
        t, c = time.perf_counter(), time.process_time()
        engine.link(record)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def phase_engine(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from engine import _query_records

    engine, ready, hit = _ready_engine(args)
    rss_ready = _peak_rss_mb()
    queries = _query_records(BASE_WORLD, args.queries)
    engine.link(queries.slice(0, 1000))  # warm-up
    load_start = os.getloadavg()
    single, single_cpu = _time_singles(engine, queries.slice(0, min(args.single, queries.num_rows)))
    batches = [queries.slice(s, 1000) for s in range(0, queries.num_rows, 1000)]
    rates, cpu_rates = [], []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        decided = sum(len(engine.link(b)) for b in batches)
        rates.append(decided / (time.perf_counter() - t))
        cpu_rates.append(decided / (time.process_time() - c))
    decisions = engine.link(queries)
    truth = pq.read_table(BASE_WORLD / "truth.parquet").filter(pc.equal(pc.field("source"), "member"))
    true_person = dict(zip(truth.column("record_id").to_pylist(), truth.column("true_nik").to_pylist(), strict=True))
    in_master = [d for d in decisions if true_person.get(d.record_id)]
    right = sum(d.master_record_id == true_person[d.record_id] for d in in_master)
    return {
        "ready_seconds": ready,
        "from_prepared_cache": hit,
        "master_rows": len(engine.master),
        "queries": queries.num_rows,
        "load_average": [load_start, os.getloadavg()],
        "single_ms": {"p50": 1000 * statistics.median(single), "p99": 1000 * _percentile(single, 0.99)},
        "single_cpu_ms": {"p50": 1000 * statistics.median(single_cpu), "p99": 1000 * _percentile(single_cpu, 0.99)},
        "batch_1000_records_per_s": statistics.median(rates),
        "batch_1000_records_per_cpu_s": statistics.median(cpu_rates),
        "mean_candidates": sum(d.candidate_count for d in decisions) / len(decisions),
        "in_master": len(in_master),
        "best_is_true_person": right,
        "auto_linked_true_person": sum(
            d.band.value == "auto_link" and d.master_record_id == true_person[d.record_id] for d in in_master
        ),
        "peak_rss_mb": {"after_ready": rss_ready, "process": _peak_rss_mb()},
    }


def _shard_kwargs() -> dict[str, Any]:
    from linkage.comparisons import SPEC_VERSION
    from linkage.records import population_records

    return {
        "cache_dir": SCALE_DIR / "prepared",
        "version": f"spec-{SPEC_VERSION}",
        "convert": population_records,
        "processes": 1,
    }


def _base_districts() -> list[str]:
    """The districts of the base regency (3603): what the sharded instance holds at every size."""
    import pyarrow.parquet as pq

    rows = pq.read_table(BASE_WORLD / "crosswalk.parquet").to_pylist()
    return sorted(r["kemendagri_code"] for r in rows if r["level"] == "district")


def phase_shardprep(args: argparse.Namespace) -> dict[str, Any]:
    """The prepared master, shard layout and global index files of this size, built once (cached)."""
    from linkage.engine import LinkageEngine
    from linkage.engine.cache import load_shard_cached, shard_layout_path
    from linkage.normalise.prepare import prepare_table

    engine = LinkageEngine.from_artefact(args.model, preparer=prepare_table)
    kwargs = _shard_kwargs()
    layout = shard_layout_path(engine, _master_path(args.size), kwargs["cache_dir"], kwargs["version"])
    cached = layout.exists() and (layout.with_suffix(".index") / "manifest.json").exists()
    start = time.perf_counter()
    load_shard_cached(engine, _master_path(args.size), [], **kwargs)
    return {"built_seconds": None if cached else time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}


#: Records (other than the measured ones) the sharded phase warms up on; its last `--single` are the
#: single-record calls.
WARM_UP_RECORDS = 5_000


def phase_shard(args: argparse.Namespace) -> dict[str, Any]:
    """One sharded instance: the base regency's districts held, the global index over the whole master
    memory-mapped; the same queries and timings as `phase_engine`."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from engine import _query_records

    from linkage.engine import LinkageEngine
    from linkage.engine.cache import load_shard_cached, shard_layout_path
    from linkage.normalise.prepare import prepare_table

    regions = _base_districts()
    # the measured queries, and WARM_UP_RECORDS others for the warm-up: the first pass over the measured
    # ones is then over records the engine (its caches, the rows it fetched) has never seen, as a stream
    everything = _query_records(BASE_WORLD, args.queries + WARM_UP_RECORDS)
    queries, warm_up = everything.slice(0, args.queries), everything.slice(args.queries)
    kwargs = _shard_kwargs()
    start = time.perf_counter()
    engine = LinkageEngine.from_artefact(args.model, preparer=prepare_table)
    shard = load_shard_cached(engine, _master_path(args.size), regions, **kwargs)
    ready = time.perf_counter() - start
    index_folder = shard_layout_path(engine, _master_path(args.size), kwargs["cache_dir"], kwargs["version"])
    index_folder = index_folder.with_suffix(".index")
    rss_ready, rss_now, index_rss_ready = _peak_rss_mb(), _rss_now_mb(), _mapped_rss_mb(index_folder)
    held_rows = len(engine.master)
    batch_warm_up = max(0, warm_up.num_rows - args.single)
    for start in range(0, batch_warm_up, 1000):
        engine.link(warm_up.slice(start, min(1000, batch_warm_up - start)))
    load_start = os.getloadavg()
    shard.stats = type(shard.stats)()
    single, single_cpu = _time_singles(engine, warm_up.slice(batch_warm_up))  # unseen by the warm-up batches
    batches = [queries.slice(s, 1000) for s in range(0, queries.num_rows, 1000)]
    rates, cpu_rates = [], []
    stats_before = (shard.stats.lookups, shard.stats.lookup_seconds, shard.stats.fetch_seconds, shard.stats.fetched)
    fresh: dict[str, float] = {}
    for n in range(3):  # pass 0: records never seen (a stream); passes 1-2 repeat them (caches warm)
        t, c = time.perf_counter(), time.process_time()
        decided = sum(len(engine.link(b)) for b in batches)
        rates.append(decided / (time.perf_counter() - t))
        cpu_rates.append(decided / (time.process_time() - c))
        if n == 0:
            stats = shard.stats
            passes = max(stats.lookups - stats_before[0], 1)
            fresh = {
                "records_per_s": rates[0],
                "records_per_cpu_s": cpu_rates[0],
                "lookup_ms_per_batch": 1000 * (stats.lookup_seconds - stats_before[1]) / passes,
                "fetch_ms_per_batch": 1000 * (stats.fetch_seconds - stats_before[2]) / passes,
                "rows_fetched": stats.fetched - stats_before[3],
            }
    stats = shard.stats
    lookups = max(stats.lookups - stats_before[0], 1)
    decisions = engine.link(queries)
    # candidate pairs whose master row is of a district not held: found through the global index
    district = engine.master.prepared.columns["district_code"]
    held = np.array([district._index[r] for r in regions if r in district._index], dtype=np.int32)
    via_index, pairs = 0, 0
    for b in batches:
        codes = district.codes[engine.scoring.score(b).master_rows]
        pairs += len(codes)
        via_index += int((~np.isin(codes, held)).sum())
    truth = pq.read_table(BASE_WORLD / "truth.parquet").filter(pc.equal(pc.field("source"), "member"))
    true_person = dict(zip(truth.column("record_id").to_pylist(), truth.column("true_nik").to_pylist(), strict=True))
    in_master = [d for d in decisions if true_person.get(d.record_id)]
    return {
        "ready_seconds": ready,
        "master_rows": shard.index.size,
        "rows_held": held_rows,
        "rows_held_after_queries": len(engine.master),
        "regions_held": len(regions),
        "index_entries": shard.index.entries,
        "index_bytes": shard.index.nbytes,
        "queries": queries.num_rows,
        "load_average": [load_start, os.getloadavg()],
        "single_ms": {"p50": 1000 * statistics.median(single), "p99": 1000 * _percentile(single, 0.99)},
        "single_cpu_ms": {"p50": 1000 * statistics.median(single_cpu), "p99": 1000 * _percentile(single_cpu, 0.99)},
        "fresh": fresh,
        "batch_1000_records_per_s": statistics.median(rates[1:]),
        "batch_1000_records_per_cpu_s": statistics.median(cpu_rates[1:]),
        "lookup_ms_per_batch": 1000 * (stats.lookup_seconds - stats_before[1]) / lookups,
        "fetch_ms_per_batch": 1000 * (stats.fetch_seconds - stats_before[2]) / lookups,
        "rows_fetched": stats.fetched,
        "regions_on_demand": stats.regions_on_demand,
        "candidate_pairs": pairs,
        "candidate_pairs_via_index": via_index,
        "mean_candidates": sum(d.candidate_count for d in decisions) / len(decisions),
        "in_master": len(in_master),
        "best_is_true_person": sum(d.master_record_id == true_person[d.record_id] for d in in_master),
        "rss_mb": {
            "peak_at_ready": rss_ready,
            "at_ready": rss_now,
            "index_files_at_ready": index_rss_ready,
            "after_queries": _rss_now_mb(),
            "index_files_after_queries": _mapped_rss_mb(index_folder),
            "peak": _peak_rss_mb(),
        },
    }


PHASES = {
    "master": phase_master,
    "model": phase_model,
    "cold": phase_cold,
    "engine": phase_engine,
    "shardprep": phase_shardprep,
    "shard": phase_shard,
}


# --- orchestration -------------------------------------------------------------------------------------


def _run_phase(name: str, args: argparse.Namespace, size: int) -> dict[str, Any]:
    out = SCALE_DIR / f"phase-{name}-{size}.json"
    cmd = [sys.executable, __file__, "--phase", name, "--phase-out", str(out), "--size", str(size)]
    cmd += ["--queries", str(args.queries), "--single", str(args.single)]
    if args.model:
        cmd += ["--model", args.model]
    print(f"[scale] {name} {size:,} ... ({time.strftime('%H:%M:%S')})", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _report(results: dict[str, Any]) -> None:
    sizes = results["sizes"]
    rows = {s: results["by_size"][str(s)] for s in sizes}
    if "engine" in rows[sizes[0]]:
        _report_full(results, sizes, rows)
    if "shard" in rows[sizes[0]]:
        _report_sharded(sizes, rows)


def _ratio(value: float, first: float) -> str:
    return f"{value / first:.2f}" if first else "-"


def _report_full(results: dict[str, Any], sizes: list[int], rows: dict[int, Any]) -> None:
    base = rows[sizes[0]]
    ratio = _ratio
    print(
        f"\nmodel {results['model']}; query records: the first {base['engine']['queries']:,} members of the 3603 world"
    )
    print(
        "master persons | candidates/record | batch-1,000 rec/s (per CPU-s) | single p50 / p99 ms (CPU p99) | "
        "ready cold / cached s | RSS cold / engine MB | best = true person | global-index share"
    )
    for s in sizes:
        e, c = rows[s]["engine"], rows[s]["cold"]
        print(
            f"{e['master_rows']:>14,} | {e['mean_candidates']:>17.1f} | "
            f"{e['batch_1000_records_per_s']:>8,.0f} ({e['batch_1000_records_per_cpu_s']:>6,.0f})"
            f"{'':>10} | {e['single_ms']['p50']:.2f} / {e['single_ms']['p99']:.2f} ({e['single_cpu_ms']['p99']:.2f})"
            f"{'':>6} | {c.get('ready_seconds', float('nan')):.1f} / {e['ready_seconds']:.1f} | "
            f"{c.get('peak_rss_mb', float('nan')):,.0f} / {e['peak_rss_mb']['process']:,.0f} | "
            f"{e['best_is_true_person']:,} of {e['in_master']:,} | n/a (whole master held)"
        )
        print(f"{'':>14}   load average {e['load_average'][0]} -> {e['load_average'][1]}")
    b, bc = base["engine"], base["cold"]
    for s in sizes[1:]:
        e, c = rows[s]["engine"], rows[s]["cold"]
        print(
            f"ratio {e['master_rows'] / b['master_rows']:.1f}x master / {b['master_rows']:,}: "
            f"candidates {ratio(e['mean_candidates'], b['mean_candidates'])}, "
            f"records/s {ratio(e['batch_1000_records_per_s'], b['batch_1000_records_per_s'])} "
            f"(per CPU-s {ratio(e['batch_1000_records_per_cpu_s'], b['batch_1000_records_per_cpu_s'])}), "
            f"single p50 {ratio(e['single_ms']['p50'], b['single_ms']['p50'])}, "
            f"p99 {ratio(e['single_ms']['p99'], b['single_ms']['p99'])}, "
            f"ready cold {ratio(c.get('ready_seconds', 0.0), bc.get('ready_seconds', 0.0))}, "
            f"cached {ratio(e['ready_seconds'], b['ready_seconds'])}, "
            f"RSS {ratio(e['peak_rss_mb']['process'], b['peak_rss_mb']['process'])}"
        )


def _report_sharded(sizes: list[int], rows: dict[int, Any]) -> None:
    print(
        "\nsharded: one instance holds the base regency's districts; the global index covers the whole master "
        "(memory-mapped files)"
    )
    print(
        "master persons | rows held | index entries (MB) | heap RSS ready / after MB | index pages ready / after MB "
        "| ready s (first build) | single p50 / p99 ms (CPU p50) | batch-1,000 unseen: rec/s (per CPU-s) "
        "| unseen: lookup+fetch ms/batch, rows fetched | repeated: rec/s (per CPU-s) | via index | candidates/record"
    )
    for s in sizes:
        e, prep = rows[s]["shard"], rows[s]["shardprep"]
        rss = e["rss_mb"]
        built = prep.get("built_seconds")
        print(
            f"{e['master_rows']:>14,} | {e['rows_held']:>9,} | "
            f"{e['index_entries']:>11,} ({e['index_bytes'] / 1e6:,.0f}) | "
            f"{rss['at_ready']['RssAnon']:,.0f} / {rss['after_queries']['RssAnon']:,.0f} | "
            f"{rss['index_files_at_ready']:,.1f} / {rss['index_files_after_queries']:,.1f} | "
            f"{e['ready_seconds']:.1f} ({'cached' if built is None else f'{built:.0f}'}) | "
            f"{e['single_ms']['p50']:.2f} / {e['single_ms']['p99']:.2f} ({e['single_cpu_ms']['p50']:.2f}) | "
            f"{e['fresh']['records_per_s']:,.0f} ({e['fresh']['records_per_cpu_s']:,.0f}) | "
            f"{e['fresh']['lookup_ms_per_batch']:.2f}+{e['fresh']['fetch_ms_per_batch']:.2f}, "
            f"{e['fresh']['rows_fetched']:,} | "
            f"{e['batch_1000_records_per_s']:,.0f} ({e['batch_1000_records_per_cpu_s']:,.0f}) | "
            f"{100 * e['candidate_pairs_via_index'] / max(e['candidate_pairs'], 1):.2f}% | {e['mean_candidates']:.2f}"
        )
        print(f"{'':>14}   load average {e['load_average'][0]} -> {e['load_average'][1]}")
    b = rows[sizes[0]]["shard"]
    for s in sizes[1:]:
        e = rows[s]["shard"]
        print(
            f"sharded ratio {e['master_rows'] / b['master_rows']:.1f}x master / {b['master_rows']:,}: per-record CPU "
            f"(batch 1,000) unseen records {_ratio(b['fresh']['records_per_cpu_s'], e['fresh']['records_per_cpu_s'])}, "
            f"repeated {_ratio(b['batch_1000_records_per_cpu_s'], e['batch_1000_records_per_cpu_s'])} "
            f"(flat = 1.00), single CPU p50 {_ratio(e['single_cpu_ms']['p50'], b['single_cpu_ms']['p50'])}, "
            f"heap RSS {_ratio(e['rss_mb']['after_queries']['RssAnon'], b['rss_mb']['after_queries']['RssAnon'])}, "
            f"ready {_ratio(e['ready_seconds'], b['ready_seconds'])}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000,10000000", help="master sizes, comma-separated")
    parser.add_argument("--model", default=None, help="members model folder (default: trained once, cached)")
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=1_000, help="single-record calls timed")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold start (ready from the cache only)")
    parser.add_argument(
        "--modes",
        default="full,sharded",
        help="full: one engine holding the whole master; sharded: one instance holding the base regency's "
        "districts with the global index over the whole master (memory-mapped); comma-separated",
    )
    parser.add_argument("--results", default=str(SCALE_DIR / "scale-results.json"), help="results JSON file")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    SCALE_DIR.mkdir(parents=True, exist_ok=True)
    if args.phase:
        Path(args.phase_out).write_text(json.dumps(PHASES[args.phase](args)), encoding="utf-8")
        return
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"error: --sizes must be whole numbers separated by commas, got {args.sizes!r}") from None
    if not sizes or min(sizes) < BASE_PERSONS:
        raise SystemExit(f"error: --sizes needs sizes of at least {BASE_PERSONS:,} (the base world)")
    if not args.model:
        cached = sorted((SCALE_DIR / "models").glob("members-*")) if (SCALE_DIR / "models").exists() else []
        args.model = str(cached[-1]) if cached else _run_phase("model", args, 0)["model"]
    results: dict[str, Any] = {"sizes": sizes, "model": args.model, "by_size": {}}
    modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if not modes or modes - {"full", "sharded"}:
        raise SystemExit(f"error: --modes takes full and/or sharded, got {args.modes!r}")
    results["modes"] = sorted(modes)
    for size in sizes:
        entry = {"master": _run_phase("master", args, size)}
        if "full" in modes:
            entry["cold"] = {} if args.no_cold else _run_phase("cold", args, size)
            entry["engine"] = _run_phase("engine", args, size)
        if "sharded" in modes:
            entry["shardprep"] = _run_phase("shardprep", args, size)
            entry["shard"] = _run_phase("shard", args, size)
        results["by_size"][str(size)] = entry
        Path(args.results).write_text(json.dumps(results, indent=2), encoding="utf-8")
    _report(results)


if __name__ == "__main__":
    main()
