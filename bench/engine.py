"""Benchmark: the real-time LinkageEngine against Splink's predict_between, in the same run.

    .venv/bin/python bench/engine.py [--persons 1000000] [--seed 20261128] [--model ARTEFACT_DIR]

Steps (each measured phase runs in its own fresh process, so peak RSS is that phase's own):
1. world: generates a `--persons` world under .run/bench/ (reused when already there);
2. model: `--model` artefact, else a members model trained once on a separate 50,000-person world
   (cached under .run/bench/); the engine and Splink both use it;
3. engine: ready time from population.parquet (read, convert, prepare on 2 forked workers, encode,
   index), throughput at batch sizes 1/10/100/1000 in one process and in two forked processes,
   single-record latency percentiles, peak RSS;
4. Splink: predict_between of the same records against the same prepared master (DuckDB, the master's
   term-frequency tables registered): single records and a batch of 1,000;
5. prints a table and the ratios, and writes .run/bench/engine-results.json.
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
BENCH_DIR = ROOT / ".run" / "bench"
BATCH_SIZES = (1, 10, 100, 1000)


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- phases (each runs in a child process) -------------------------------------------------------------


def _query_records(world: Path, count: int) -> Any:
    """The first `count` survey members of the world (linkage records, family context dropped)."""
    from contracts.submission import FAMILY_SUBMISSION_ADAPTER
    from linkage.records import LINKAGE_COLUMNS
    from services.world import member_records, village_crosswalk

    submissions = []
    members = 0
    with open(world / "submissions.jsonl", encoding="utf-8") as fh:
        for line in fh:
            sub = FAMILY_SUBMISSION_ADAPTER.validate_json(line)
            submissions.append(sub)
            members += len(sub.members)
            if members >= count:
                break
    table = member_records(submissions, village_crosswalk(world / "crosswalk.parquet"))
    return table.select(list(LINKAGE_COLUMNS)).slice(0, count)


def phase_world(args: argparse.Namespace) -> dict[str, Any]:
    from synthetic.world import generate_world

    out = Path(args.world)
    if not (out / "population.parquet").exists() or not (out / "submissions.jsonl").exists():
        start = time.perf_counter()
        generate_world(out, persons=args.persons, seed=args.seed)
        return {"generated_seconds": time.perf_counter() - start}
    return {"generated_seconds": None}


def phase_model(args: argparse.Namespace) -> dict[str, Any]:
    """Train a members model on a separate small world (once; cached)."""
    from linkage.model.artefact import ModelArtefact, build_metadata, regularise, save_artefact, table_sha256
    from linkage.model.training import train_model
    from linkage.normalise.prepare import prepare_table
    from services.world import load_world_source
    from synthetic.world import generate_world

    train_world = BENCH_DIR / "train-world-50000-s7"
    if not (train_world / "population.parquet").exists():
        generate_world(train_world, persons=50_000, seed=7)
    master, records = load_world_source(str(train_world), "members")
    master_p, records_p = prepare_table(master), prepare_table(records)
    model = regularise(train_model(master_p, records_p, "members", max_pairs=2e6, seed=7))
    meta = build_metadata("members", table_sha256(master_p, records_p), training={"bench": True})
    folder = save_artefact(ModelArtefact(model, meta), BENCH_DIR / "models", charts=False)
    return {"model": str(folder)}


def _ready_engine(args: argparse.Namespace) -> tuple[Any, float, bool]:
    """Engine ready to link: model loaded, master prepared (via the prepared cache), encoded, indexed."""
    from linkage.comparisons import SPEC_VERSION
    from linkage.engine import LinkageEngine
    from linkage.engine.cache import load_master_cached
    from linkage.normalise.prepare import prepare_table
    from linkage.records import population_records

    start = time.perf_counter()
    engine = LinkageEngine.from_artefact(args.model, preparer=prepare_table)
    hit = load_master_cached(
        engine,
        Path(args.world) / "population.parquet",
        cache_dir=BENCH_DIR / "prepared",
        version=f"spec-{SPEC_VERSION}",
        convert=population_records,
        processes=1,
    )
    return engine, time.perf_counter() - start, hit


def phase_cold(args: argparse.Namespace) -> dict[str, Any]:
    """Ready time without the prepared cache (normalises the whole master column-wise in one process)."""
    for stale in (BENCH_DIR / "prepared").glob("prepared-master-*.parquet"):
        stale.unlink()
    engine, ready, hit = _ready_engine(args)
    assert not hit
    return {
        "ready_seconds": ready,
        "peak_rss_mb": _peak_rss_mb(),
        "largest_worker_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN),
        "master_rows": len(engine.master),
    }


def phase_engine(args: argparse.Namespace) -> dict[str, Any]:
    from linkage.engine.parallel import EngineWorkers

    engine, ready, hit = _ready_engine(args)
    rss_ready = _peak_rss_mb()
    queries = _query_records(Path(args.world), args.queries)
    out: dict[str, Any] = {
        "ready_seconds": ready,
        "from_prepared_cache": hit,
        "master_rows": len(engine.master),
        "queries": queries.num_rows,
    }
    engine.link(queries.slice(0, 1000))  # warm-up: caches, lazily built vocabularies

    out["load_average_start"] = os.getloadavg()
    single: list[float] = []
    single_cpu: list[float] = []
    for i in range(min(args.single, queries.num_rows)):
        record = queries.slice(i, 1)
        t, c = time.perf_counter(), time.process_time()
        engine.link(record)
        single.append(time.perf_counter() - t)
        single_cpu.append(time.process_time() - c)
    out["single_ms"] = {
        "p50": 1000 * statistics.median(single),
        "p95": 1000 * _percentile(single, 0.95),
        "p99": 1000 * _percentile(single, 0.99),
        "n": len(single),
    }
    # CPU time per call: what the call costs when it has a core to itself (the machine is shared)
    out["single_cpu_ms"] = {
        "p50": 1000 * statistics.median(single_cpu),
        "p95": 1000 * _percentile(single_cpu, 0.95),
        "p99": 1000 * _percentile(single_cpu, 0.99),
    }
    throughput: dict[str, dict[str, float]] = {}
    for size in BATCH_SIZES:
        n = min(queries.num_rows, {1: 2000, 10: 5000}.get(size, queries.num_rows))
        batches = [queries.slice(s, min(size, n - s)) for s in range(0, n, size)]
        # median of 3 timed passes each: the machine is shared, single passes are noisy
        one_rates, cpu_rates, two_rates = [], [], []
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            decided = sum(len(engine.link(b)) for b in batches)
            one_rates.append(decided / (time.perf_counter() - t))
            cpu_rates.append(decided / (time.process_time() - c))
        with EngineWorkers(engine, processes=2) as workers:
            # one untimed pass first: a long-running worker is past its start-up (first touches of
            # shared pages, lazily built caches); the timed passes are the steady state
            workers.link_batches(batches)
            for _ in range(3):
                t = time.perf_counter()
                decided2 = sum(len(d) for d in workers.link_batches(batches))
                two_rates.append(decided2 / (time.perf_counter() - t))
        throughput[str(size)] = {
            "one_process": statistics.median(one_rates),
            "two_processes": statistics.median(two_rates),
            "one_process_per_cpu_s": statistics.median(cpu_rates),
        }
    out["throughput_records_per_s"] = throughput
    out["load_average_end"] = os.getloadavg()
    decisions = engine.link(queries)
    bands: dict[str, int] = {}
    for d in decisions:
        bands[d.band.value] = bands.get(d.band.value, 0) + 1
    out["bands"] = bands
    out["mean_candidates"] = sum(d.candidate_count for d in decisions) / len(decisions)
    out["peak_rss_mb"] = {
        "after_ready": rss_ready,
        "process": _peak_rss_mb(),
        "largest_worker": _peak_rss_mb(resource.RUSAGE_CHILDREN),
    }
    return out


def _cached_prepared_master(args: argparse.Namespace) -> Any:
    """The prepared master the engine phases cached (prepared here if the cache is missing)."""
    import pyarrow.parquet as pq

    from linkage.comparisons import SPEC_VERSION
    from linkage.engine import LinkageEngine
    from linkage.engine.cache import prepared_cache_path
    from linkage.normalise.prepare import prepare_table
    from linkage.records import population_records

    engine = LinkageEngine.from_artefact(args.model)
    source = Path(args.world) / "population.parquet"
    cache = prepared_cache_path(engine, source, BENCH_DIR / "prepared", f"spec-{SPEC_VERSION}")
    return pq.read_table(cache) if cache.exists() else prepare_table(population_records(pq.read_table(source)))


def phase_splink(args: argparse.Namespace) -> dict[str, Any]:
    import duckdb
    from splink import DuckDBAPI, Linker

    from linkage.engine.params import read_model_parameters
    from linkage.normalise.prepare import prepare_table

    model = json.loads((Path(args.model) / "model.json").read_text(encoding="utf-8"))
    # the same prepared master the engine uses (the cache the engine phases wrote)

    master = _cached_prepared_master(args)
    queries = prepare_table(_query_records(Path(args.world), args.queries))
    con = duckdb.connect()
    db = DuckDBAPI(con)
    master_sdf = db.register(master, table_name="master_records")
    first = db.register(queries.slice(0, 1), table_name="query_init")
    linker = Linker([first, master_sdf], model)
    tf_columns = sorted(
        {lv.tf_column for c in read_model_parameters(model).comparisons for lv in c.levels if lv.tf_column}
    )
    for column in tf_columns:
        con.register("prepared_master", master)
        tf = con.sql(
            f'select "{column}", cast(count(*) as double) / (select count("{column}") from prepared_master) '
            f'as "tf_{column}" from prepared_master where "{column}" is not null group by "{column}"'
        ).to_arrow_table()
        linker.table_management.register_term_frequency_lookup(db.register(tf, table_name=f"tf_{column}"), column)
    calls = 0

    scored: list[tuple[str, str, float]] = []

    def predict(batch: Any) -> int:
        nonlocal calls
        calls += 1
        sdf = db.register(batch, table_name=f"query_{calls}")
        result = linker.inference.predict_between(sdf, master_sdf)
        rows = result.as_duckdbpyrelation().select("record_id_l, record_id_r, match_weight").fetchall()
        scored.extend(rows)
        result.drop_table_from_database_and_remove_from_cache()
        sdf.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
        return len(rows)

    predict(queries.slice(0, 1))  # warm-up
    load_start = os.getloadavg()
    single, single_cpu = [], []
    for i in range(args.splink_single):
        t, c = time.perf_counter(), time.process_time()
        predict(queries.slice(1 + i, 1))
        single.append(time.perf_counter() - t)
        single_cpu.append(time.process_time() - c)
    batch_seconds, batch_cpu = [], []
    for k in range(args.splink_batches):
        t, c = time.perf_counter(), time.process_time()
        predict(queries.slice(1000 * k, 1000))
        batch_seconds.append(time.perf_counter() - t)
        batch_cpu.append(time.process_time() - c)
    return {
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        # DuckDB uses both cores: its CPU time is summed over its threads
        "single_cpu_ms_p50": 1000 * statistics.median(single_cpu),
        "batch_1000_cpu_seconds": statistics.median(batch_cpu),
        "single_ms": {
            "p50": 1000 * statistics.median(single),
            "p99": 1000 * _percentile(single, 0.99),
            "n": len(single),
        },
        "batch_1000_seconds": statistics.median(batch_seconds),
        "batch_1000_records_per_s": 1000 / statistics.median(batch_seconds),
        "peak_rss_mb": _peak_rss_mb(),
        "equivalence": _equivalence(args, scored, queries.slice(0, 1000 * args.splink_batches)),
    }


def _equivalence(args: argparse.Namespace, splink_rows: list[tuple[str, str, float]], queries: Any) -> dict[str, Any]:
    """The engine's weights on the very pairs Splink scored above (same master, same records)."""
    from linkage.engine import LinkageEngine
    from linkage.engine.relatives import RelativeNikRule, discount_pairs

    engine = LinkageEngine.from_artefact(args.model)
    engine.master.load_prepared(_cached_prepared_master(args))
    splink = {(q, m): w for q, m, w in splink_rows}
    result = engine.scoring.score(queries)
    ids = queries.column("record_id").to_pylist()
    ours = {
        (ids[q], engine.master.prepared.record_id(r)): w
        for q, r, w in zip(
            result.query_index.tolist(), result.master_rows.tolist(), result.scores.totals.tolist(), strict=True
        )
    }
    common = ours.keys() & splink.keys()
    best_splink: dict[str, float] = {}
    for (q, _), w in splink.items():
        best_splink[q] = max(w, best_splink.get(q, -1e300))
    decisions = {d.record_id: d for d in engine.link(queries)}
    # records whose raw best pair the relative's-NIK / household rule lowers (linkage.engine.relatives):
    # there the engine's best is by design not Splink's raw best
    rule = RelativeNikRule.from_parameters(engine.parameters)
    s = result.scores
    ruled_pairs = discount_pairs(rule, result.query_index, s.levels, s.weights, s.totals)
    ruled: set[str] = set()
    if ruled_pairs is not None:
        lowered = ruled_pairs[0] != s.totals
        ruled = {
            ids[q]
            for q, r, low in zip(
                result.query_index.tolist(), result.master_rows.tolist(), lowered.tolist(), strict=True
            )
            if low and ours[(ids[q], engine.master.prepared.record_id(r))] == best_splink.get(ids[q])
        }
    same_best = 0
    for q, w in best_splink.items():
        chosen = decisions[q].master_record_id
        same_best += q not in ruled and chosen is not None and splink.get((q, chosen)) == w
    return {
        "splink_pairs": len(splink),
        "engine_pairs": len(ours),
        "common_pairs": len(common),
        "max_abs_weight_difference": max((abs(ours[k] - splink[k]) for k in common), default=0.0),
        "records_with_candidates": len(best_splink),
        "same_best_candidate": same_best,
        "records_ruled": len(ruled),
    }


PHASES = {
    "world": phase_world,
    "model": phase_model,
    "cold": phase_cold,
    "engine": phase_engine,
    "splink": phase_splink,
}


# --- orchestration -------------------------------------------------------------------------------------


def _run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    out = BENCH_DIR / f"phase-{name}.json"
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--phase-out",
        str(out),
        "--world",
        args.world,
        "--persons",
        str(args.persons),
        "--seed",
        str(args.seed),
        "--queries",
        str(args.queries),
        "--single",
        str(args.single),
        "--splink-single",
        str(args.splink_single),
        "--splink-batches",
        str(args.splink_batches),
    ]
    if args.model:
        cmd += ["--model", args.model]
    print(f"[bench] {name} ...", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _report(results: dict[str, Any]) -> None:
    eng, spl = results["engine"], results.get("splink")
    print(
        f"\nmaster rows: {eng['master_rows']:,}; query records: {eng['queries']:,}; "
        f"mean candidates per record: {eng['mean_candidates']:.1f}; bands: {eng['bands']}"
    )
    cold = results["cold"]
    print(
        f"engine ready from population.parquet, cold (column-wise normalisation, one process): "
        f"{cold['ready_seconds']:.1f} s, peak RSS {cold['peak_rss_mb']:.0f} MB "
        f"(largest worker {cold['largest_worker_rss_mb']:.0f} MB)"
    )
    print(
        f"engine ready from the prepared-master cache: {eng['ready_seconds']:.1f} s "
        f"(RSS after ready {eng['peak_rss_mb']['after_ready']:.0f} MB)"
    )
    s, sc = eng["single_ms"], eng["single_cpu_ms"]
    print(
        f"engine single record: p50 {s['p50']:.2f} ms, p95 {s['p95']:.2f} ms, p99 {s['p99']:.2f} ms (n={s['n']}); "
        f"CPU time per call p50 {sc['p50']:.2f}, p95 {sc['p95']:.2f}, p99 {sc['p99']:.2f} ms"
    )
    print(f"load average during the engine phase: {eng['load_average_start']} -> {eng['load_average_end']}")
    print("engine throughput (records/s):  batch   1 process   2 processes   per CPU-second (1 process)")
    for size, t in eng["throughput_records_per_s"].items():
        print(
            f"                                {size:>5}   {t['one_process']:>9,.0f}   {t['two_processes']:>11,.0f}"
            f"   {t['one_process_per_cpu_s']:>12,.0f}"
        )
    rss = eng["peak_rss_mb"]
    print(f"engine peak RSS: {rss['process']:.0f} MB (main), {rss['largest_worker']:.0f} MB (largest child)")
    if spl:
        print(
            f"splink predict_between single record: p50 {spl['single_ms']['p50']:.0f} ms, "
            f"p99 {spl['single_ms']['p99']:.0f} ms (n={spl['single_ms']['n']})"
        )
        print(
            f"splink predict_between batch 1,000: {spl['batch_1000_seconds']:.2f} s "
            f"({spl['batch_1000_records_per_s']:,.0f} records/s); peak RSS {spl['peak_rss_mb']:.0f} MB"
        )
        two = eng["throughput_records_per_s"]["1000"]["two_processes"]
        one = eng["throughput_records_per_s"]["1000"]["one_process"]
        print(
            f"ratios: batch 1,000 throughput {one / spl['batch_1000_records_per_s']:.1f}x (1 process), "
            f"{two / spl['batch_1000_records_per_s']:.1f}x (2 processes); single-record p99 "
            f"{spl['single_ms']['p99'] / s['p99']:.0f}x; p50 {spl['single_ms']['p50'] / s['p50']:.0f}x"
        )
        eq = spl["equivalence"]
        print(
            f"equivalence on the {eng['master_rows']:,}-row master: {eq['common_pairs']:,} common pairs of "
            f"{eq['splink_pairs']:,} (Splink) and {eq['engine_pairs']:,} (engine); max |weight difference| "
            f"{eq['max_abs_weight_difference']:.2e}; same best candidate for {eq['same_best_candidate']:,} "
            f"of the {eq['records_with_candidates'] - eq.get('records_ruled', 0):,} records the relative's-NIK / "
            f"household rule leaves alone (it lowers the raw best pair of {eq.get('records_ruled', 0):,} more)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--world", default=None, help="world folder (default .run/bench/world-<persons>-s<seed>)")
    parser.add_argument("--model", default=None, help="model artefact folder (default: train a cached one)")
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=2_000, help="single-record calls timed on the engine")
    parser.add_argument("--splink-single", type=int, default=20)
    parser.add_argument("--splink-batches", type=int, default=2)
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--no-cold", action="store_true", help="reuse the last cold-start figures")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.world = args.world or str(BENCH_DIR / f"world-{args.persons}-s{args.seed}")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if args.phase:
        Path(args.phase_out).write_text(json.dumps(PHASES[args.phase](args)), encoding="utf-8")
        return
    results: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if not k.startswith("phase")}}
    results["world"] = _run_phase("world", args)
    if not args.model:
        cached = sorted((BENCH_DIR / "models").glob("members-*")) if (BENCH_DIR / "models").exists() else []
        args.model = str(cached[-1]) if cached else _run_phase("model", args)["model"]
    results["model"] = args.model
    last_cold = BENCH_DIR / "phase-cold.json"
    if args.no_cold and last_cold.exists():
        results["cold"] = json.loads(last_cold.read_text(encoding="utf-8"))
    else:
        results["cold"] = _run_phase("cold", args)
    results["engine"] = _run_phase("engine", args)
    if not args.no_splink:
        results["splink"] = _run_phase("splink", args)
    (BENCH_DIR / "engine-results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    _report(results)


if __name__ == "__main__":
    main()
