"""Benchmark: one linker instance holding the whole master vs a quarter shard with the global index.

    PYTHONPATH=$PWD .venv/bin/python bench/shard.py [--world .run/bench/world-1000000-s20261128] [--queries 20000]

The master is a generated world's population (default: bench/engine.py's 1,000,000-person world,
generated when missing) and the model the newest under .run/bench/models (or `--model`). The shard is
what an instance owning submissions partition 0 of 4 holds (`linkage.engine.shard`, the linker's
REGSOSEK_LINKER_MASTER_SHARDING): the master rows of the districts whose BPS code `partition_for` puts
on partition 0, plus the global index over the whole master for the region-free blocking rules.

Each phase runs in a fresh process (its peak RSS is its own):
- full: engine ready from the prepared-master cache; peak RSS; batch-1,000 records/s over the queries;
- shard-heap and shard: engine ready from the shard layout (an Arrow file, memory-mapped) with the
  global index opened from its files (built once by the prepare phase: `linkage.engine.index_store`),
  read into the heap (shard-heap: as before the index was kept in files) or memory-mapped (shard, what
  the linker does); peak RSS, anonymous RSS (heap) and the resident pages of the index files
  (/proc/self/smaps) at ready and after the queries; the index's entries and bytes; per batch of
  1,000: the global lookup and the fetch of rows of other districts (ms), and the share of candidate
  pairs whose master row came through the index.
The queries are the survey members of partition 0's families (what that instance links), the first
`--queries` of the world. Decisions of the two are compared (they must be the same). Results in
.run/shard/shard-results.json. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / ".run" / "shard"
DEFAULT_WORLD = ROOT / ".run" / "bench" / "world-1000000-s20261128"
PARTITIONS = 4
PARTITION = 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_now_mb() -> dict[str, float]:
    """Current resident memory: anonymous (the heap: engine, index) and file-backed (mapped pages)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024.0
    return fields


def _mapped_rss_mb(folder: Path) -> float:
    """Resident memory of this process's mappings of files under `folder` (/proc/self/smaps)."""
    total_kb, inside = 0, False
    prefix = str(folder.resolve())
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
            inside = len(head) >= 6 and head[5].startswith(prefix)
        elif inside and head and head[0] == "Rss:":
            total_kb += int(head[1])
    return total_kb / 1024.0


def _model(args: argparse.Namespace) -> Path:
    if args.model:
        return Path(args.model)
    models = sorted((ROOT / ".run" / "bench" / "models").glob("members-*"))
    if not models:
        raise SystemExit("error: no model under .run/bench/models: run bench/engine.py once, or pass --model")
    return models[-1]


def _engine(args: argparse.Namespace) -> Any:
    from linkage.engine import LinkageEngine
    from linkage.normalise.prepare import prepare_table

    return LinkageEngine.from_artefact(_model(args), preparer=prepare_table)


def _cache_kwargs() -> dict[str, Any]:
    from linkage.comparisons import SPEC_VERSION
    from linkage.records import population_records

    return {"cache_dir": OUT_DIR / "prepared", "version": f"spec-{SPEC_VERSION}", "convert": population_records}


def _queries(args: argparse.Namespace) -> Any:
    """The first `--queries` members of families on partition 0 (linkage records with family context)."""
    import json as _json

    from contracts.partitioning import partition_for
    from contracts.submission import FAMILY_SUBMISSION_ADAPTER
    from linkage.records import family_key_string
    from services.world import member_records, village_crosswalk

    world = Path(args.world)
    submissions, members = [], 0
    with open(world / "submissions.jsonl", encoding="utf-8") as fh:
        for line in fh:
            key = family_key_string(_json.loads(line)["family_key"]).encode()
            if partition_for(key, PARTITIONS) != PARTITION:
                continue
            sub = FAMILY_SUBMISSION_ADAPTER.validate_json(line)
            submissions.append(sub)
            members += len(sub.members)
            if members >= args.queries:
                break
    return member_records(submissions, village_crosswalk(world / "crosswalk.parquet")).slice(0, args.queries)


def _queries_and_warm_up(args: argparse.Namespace) -> tuple[Any, Any]:
    """The measured queries, and 1,000 further members of partition 0 for the warm-up pass."""
    both = _queries(argparse.Namespace(**{**vars(args), "queries": args.queries + 1000}))
    return both.slice(0, args.queries), both.slice(args.queries, 1000)


def _regions(args: argparse.Namespace) -> list[str]:
    import pyarrow.parquet as pq

    from contracts.partitioning import partition_for

    rows = pq.read_table(Path(args.world) / "crosswalk.parquet").to_pylist()
    return sorted(
        r["kemendagri_code"]
        for r in rows
        if r["level"] == "district" and partition_for(r["bps_code"].encode(), PARTITIONS) == PARTITION
    )


def _link_all(engine: Any, queries: Any) -> tuple[list[Any], list[float]]:
    decisions, seconds = [], []
    for start in range(0, queries.num_rows, 1000):
        t = time.perf_counter()
        decisions.extend(engine.link(queries.slice(start, 1000)))
        seconds.append(time.perf_counter() - t)
    return decisions, seconds


def _summary(decisions: list[Any]) -> list[tuple[Any, ...]]:
    return [(d.record_id, d.master_record_id, d.match_probability, d.candidate_count) for d in decisions]


# --- phases (each runs in a child process) -------------------------------------------------------------


def phase_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The world (generated once), the prepared master and the shard layout, cached."""
    from linkage.engine.cache import load_shard_cached, prepared_master_cached

    world = Path(args.world)
    if not (world / "population.parquet").exists():
        from synthetic.world import generate_world

        generate_world(world, persons=1_000_000, seed=20261128)
    start = time.perf_counter()
    engine = _engine(args)
    prepared, _ = prepared_master_cached(engine, world / "population.parquet", **_cache_kwargs())
    rows = prepared.num_rows
    del prepared
    load_shard_cached(engine, world / "population.parquet", [], **_cache_kwargs())
    return {"seconds": time.perf_counter() - start, "master_rows": rows}


def phase_full(args: argparse.Namespace) -> dict[str, Any]:
    from linkage.engine.cache import load_master_cached

    queries, warm = _queries_and_warm_up(args)
    start = time.perf_counter()
    engine = _engine(args)
    load_master_cached(engine, Path(args.world) / "population.parquet", **_cache_kwargs())
    ready = time.perf_counter() - start
    rss_ready = _peak_rss_mb()
    rss_now = _rss_now_mb()
    _link_all(engine, warm)  # warm-up on other records: lazily built vocabulary forms
    decisions, seconds = _link_all(engine, queries)
    rss_after = _rss_now_mb()
    (OUT_DIR / "full-decisions.json").write_text(json.dumps(_summary(decisions)), encoding="utf-8")
    return {
        "ready_seconds": ready,
        "master_rows": len(engine.master),
        "peak_rss_mb_ready": rss_ready,
        "rss_at_ready_mb": rss_now,
        "rss_after_queries_mb": rss_after,
        "peak_rss_mb": _peak_rss_mb(),
        "queries": queries.num_rows,
        "records_per_s": queries.num_rows / sum(seconds),
        "batch_ms": 1000 * sum(seconds) / len(seconds),
        "mean_candidates": sum(d.candidate_count for d in decisions) / len(decisions),
    }


def phase_shard(args: argparse.Namespace, map_index: bool = True) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from linkage.engine.cache import load_shard_cached, shard_layout_path

    queries, warm = _queries_and_warm_up(args)
    regions = _regions(args)
    start = time.perf_counter()
    engine = _engine(args)
    source = Path(args.world) / "population.parquet"
    shard = load_shard_cached(engine, source, regions, **_cache_kwargs(), map_index=map_index)
    ready = time.perf_counter() - start
    rss_ready = _peak_rss_mb()
    rss_now = _rss_now_mb()
    kwargs = _cache_kwargs()
    index_folder = shard_layout_path(engine, source, kwargs["cache_dir"], kwargs["version"]).with_suffix(".index")
    index_mapped_ready = _mapped_rss_mb(index_folder)
    held_rows = len(engine.master)
    _link_all(engine, warm)  # the same warm-up (its own fetches are not counted below)
    fetched_in_warm_up = shard.stats.fetched
    shard.stats = type(shard.stats)()
    decisions, seconds = _link_all(engine, queries)
    stats = shard.stats
    # candidate pairs whose master row is not of a held district: found through the global index
    master = engine.master.prepared
    district = master.columns["district_code"]
    held = {district._index[r] for r in regions if r in district._index}
    via_index, total = 0, 0
    for start_row in range(0, queries.num_rows, 1000):
        scored = engine.scoring.score(queries.slice(start_row, 1000))
        codes = district.codes[scored.master_rows]
        total += len(codes)
        via_index += int((~np.isin(codes, np.fromiter(held, dtype=np.int32))).sum())
    full = json.loads((OUT_DIR / "full-decisions.json").read_text(encoding="utf-8"))
    same = [list(s) for s in _summary(decisions)] == full
    batches = len(seconds)
    return {
        "index_mapped": map_index,
        "index_mapped_rss_mb": {"ready": index_mapped_ready, "after_queries": _mapped_rss_mb(index_folder)},
        "rss_after_queries_mb": _rss_now_mb(),
        "ready_seconds": ready,
        "regions": len(regions),
        "held_rows": held_rows,
        "rows_after_queries": len(engine.master),
        "peak_rss_mb_ready": rss_ready,
        "rss_at_ready_mb": rss_now,
        "peak_rss_mb": _peak_rss_mb(),
        "index_entries": shard.index.entries,
        "index_bytes": shard.index.nbytes,
        "index_rules": [list(right for _, right in rule) for rule in shard.index.rules],
        "queries": queries.num_rows,
        "queries_in_held_districts": int(
            pc.sum(
                pc.is_in(pc.utf8_slice_codeunits(queries["village_code"], 0, 6), value_set=pa.array(regions))
            ).as_py()
            or 0
        ),
        "records_per_s": queries.num_rows / sum(seconds),
        "batch_ms": 1000 * sum(seconds) / batches,
        "lookup_ms_per_batch": 1000 * stats.lookup_seconds / max(stats.lookups, 1),
        "fetch_ms_per_batch": 1000 * stats.fetch_seconds / max(stats.lookups, 1),
        "rows_found_per_batch": stats.found / max(stats.lookups, 1),
        "rows_fetched": stats.fetched,
        "rows_fetched_in_warm_up": fetched_in_warm_up,
        "regions_on_demand": stats.regions_on_demand,
        "candidate_pairs": total,
        "candidate_pairs_via_index": via_index,
        "same_decisions_as_full": same,
    }


def phase_shard_heap(args: argparse.Namespace) -> dict[str, Any]:
    """The shard with its global index read into the heap (as before the index files were mapped)."""
    return phase_shard(args, map_index=False)


PHASES = {"prepare": phase_prepare, "full": phase_full, "shard-heap": phase_shard_heap, "shard": phase_shard}


def _run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    out = OUT_DIR / f"phase-{name}.json"
    cmd = [sys.executable, __file__, "--phase", name, "--phase-out", str(out), "--world", str(args.world)]
    cmd += ["--queries", str(args.queries)]
    if args.model:
        cmd += ["--model", args.model]
    print(f"[shard] {name} ... ({time.strftime('%H:%M:%S')})", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _report(r: dict[str, Any]) -> None:
    f, h, s = r["full"], r["shard-heap"], r["shard"]
    print(f"\nmaster {f['master_rows']:,} rows; shard = districts of partition {PARTITION} of {PARTITIONS}")
    print(f"{'':34}{'full':>12}{'shard, index':>14}{'shard, index':>14}{'mapped/full':>13}")
    print(f"{'':34}{'':>12}{'in heap':>14}{'mapped':>14}")
    rows = [
        ("rows held at ready", f["master_rows"], h["held_rows"], s["held_rows"]),
        ("ready (s)", f["ready_seconds"], h["ready_seconds"], s["ready_seconds"]),
        ("peak RSS at ready (MB)", f["peak_rss_mb_ready"], h["peak_rss_mb_ready"], s["peak_rss_mb_ready"]),
        (
            "RSS at ready, anonymous (MB)",
            f["rss_at_ready_mb"]["RssAnon"],
            h["rss_at_ready_mb"]["RssAnon"],
            s["rss_at_ready_mb"]["RssAnon"],
        ),
        (
            "RSS at ready, mapped files (MB)",
            f["rss_at_ready_mb"]["RssFile"],
            h["rss_at_ready_mb"]["RssFile"],
            s["rss_at_ready_mb"]["RssFile"],
        ),
        ("  of which index files (MB)", 0.0, h["index_mapped_rss_mb"]["ready"], s["index_mapped_rss_mb"]["ready"]),
        (
            "RSS after queries, anonymous (MB)",
            f.get("rss_after_queries_mb", {}).get("RssAnon", float("nan")),
            h["rss_after_queries_mb"]["RssAnon"],
            s["rss_after_queries_mb"]["RssAnon"],
        ),
        (
            "  index files after queries (MB)",
            0.0,
            h["index_mapped_rss_mb"]["after_queries"],
            s["index_mapped_rss_mb"]["after_queries"],
        ),
        ("peak RSS after the queries (MB)", f["peak_rss_mb"], h["peak_rss_mb"], s["peak_rss_mb"]),
        ("records/s, batches of 1,000", f["records_per_s"], h["records_per_s"], s["records_per_s"]),
        ("ms per batch of 1,000", f["batch_ms"], h["batch_ms"], s["batch_ms"]),
        ("global lookup ms per batch", 0.0, h["lookup_ms_per_batch"], s["lookup_ms_per_batch"]),
        ("fetch ms per batch", 0.0, h["fetch_ms_per_batch"], s["fetch_ms_per_batch"]),
    ]
    for label, a, b, c in rows:
        ratio = f"{c / a:>13.2f}" if a else f"{'':>13}"
        print(f"{label:34}{a:>12,.1f}{b:>14,.1f}{c:>14,.1f}{ratio}")
    print(
        f"\nglobal index: {s['index_entries']:,} entries, {s['index_bytes'] / 1e6:,.1f} MB "
        f"({s['index_bytes'] / max(s['index_entries'], 1):.1f} bytes/entry incl. ids and term counts); "
        f"rules {s['index_rules']}"
    )
    print(
        f"mapped: {s['rows_found_per_batch']:,.0f} rows found per batch, {s['rows_fetched']:,} fetched over "
        f"{s['queries']:,} queries; {s['candidate_pairs_via_index']:,} of {s['candidate_pairs']:,} candidate pairs "
        f"({100 * s['candidate_pairs_via_index'] / max(s['candidate_pairs'], 1):.2f}%) came through the index"
    )
    print(
        f"same decisions as the full engine: index in heap {h['same_decisions_as_full']}, "
        f"mapped {s['same_decisions_as_full']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", default=str(DEFAULT_WORLD))
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--phase", choices=sorted(PHASES), default=None)
    parser.add_argument("--phase-out", default=None)
    parser.add_argument("--results", default=str(OUT_DIR / "shard-results.json"))
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if args.phase:
        result = PHASES[args.phase](args)
        Path(args.phase_out).write_text(json.dumps(result, indent=2), encoding="utf-8")
        return
    results = {name: _run_phase(name, args) for name in ("prepare", "full", "shard-heap", "shard")}
    Path(args.results).write_text(json.dumps(results, indent=2), encoding="utf-8")
    _report(results)


if __name__ == "__main__":
    main()
