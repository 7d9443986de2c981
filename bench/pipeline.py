"""Benchmark: the streaming pipeline end to end on this machine's broker, against raw pass-through.

    .venv/bin/python bench/pipeline.py [--master-persons 1000000] [--seed 20261128] [--model DIR]
                                       [--duration 30] [--max-members 60000] [--linkers 2]
                                       [--regencies 3603,3201,3301,3506]

1. world: a `--master-persons` world under .run/bench/world-<persons>-s<seed> (generated once, then
   reused), one regency (3603, 29 districts); with `--regencies`, one world per regency merged (more
   districts to spread over the partitions, which are by district); model: `--model`, else the newest
   .run/bench/models/members-* (bench/engine.py trains it), else one is trained on a 50,000-person
   world (cached);
2. a dedicated broker (tools/broker.py, free ports, .run/bench/pipeline-broker) and private topics;
3. `--linkers` instances of the linker (`tools.pipeline.profiled_linker` = `python -m services.linker`
   plus a stack sampler) in one consumer group over the 4 partitions, each with its own state folder
   and the real engine on the whole master, sharing one link-store folder (the documented scale-out,
   docs/linker.md); default 2, one per core. The prepared-master caches are kept across runs;
4. offered loads in members/s: a warm-up, then 200 and 1,000 for `--duration` s each, then the
   maximum (`--max-members` as fast as the producer goes); each on its own slice of the submissions.
   End-to-end latency = submission produced -> its linked member record consumed (one process, one
   clock). Throughput = members linked / (last record consumed - first submission produced);
5. pass-through: the same max-phase messages through as many `tools.pipeline.passthrough`
   instances (the linker's faust clients and delivery, no work), and the pipeline's share of it;
6. the profile of the linker processes over the max phase (stage shares of its threads' samples, CPU
   of the linker and broker processes). Prints a report, writes .run/bench/pipeline-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import broker as broker_service  # noqa: E402
from tools.pipeline.linker_process import LinkerProcess, PipelineTopics, provision_private_topics  # noqa: E402
from tools.pipeline.sampler import read_samples  # noqa: E402
from tools.pipeline.streaming import OutputWatcher, SubmissionStreamer, percentile  # noqa: E402

BENCH_DIR = ROOT / ".run" / "bench"
CLI = str(Path(sys.executable).parent / "regsosek")
Slice = list[tuple[bytes, bytes, int]]  # (family key, submission bytes, members)


def ensure_world(persons: int, seed: int, regencies: list[str] | None = None) -> Path:
    """The bench world: one regency's generated world, or (`regencies`) several merged into one."""
    if regencies:
        return ensure_merged_world(persons, seed, regencies)
    world = BENCH_DIR / f"world-{persons}-s{seed}"
    if not (world / "submissions.jsonl").exists():
        print(f"generating a {persons:,}-person world in {world} (once) ...", flush=True)
        subprocess.run(
            [CLI, "generate", "--out", str(world), "--persons", str(persons), "--seed", str(seed)], check=True
        )
    return world


def ensure_merged_world(persons: int, seed: int, regencies: list[str]) -> Path:
    """Worlds of `regencies` (persons split evenly, seed + i each) merged: tables concatenated, the
    submissions interleaved line by line, so every slice of the stream spans all regencies' districts.

    A deployment's instances each own many districts (docs/capacity.md: 7,285 districts over 64
    partitions); one regency (29 districts) over two instances does not spread evenly by district.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    world = BENCH_DIR / f"world-{persons}-s{seed}-r{'-'.join(regencies)}"
    if (world / "submissions.jsonl").exists():
        return world
    parts = []
    for i, regency in enumerate(regencies):
        part = BENCH_DIR / "regency-worlds" / f"world-{persons // len(regencies)}-s{seed + i}-{regency}"
        if not (part / "submissions.jsonl").exists():
            print(f"generating regency {regency} ({persons // len(regencies):,} persons) in {part} ...", flush=True)
            subprocess.run(
                [CLI, "generate", "--out", str(part), "--persons", str(persons // len(regencies))]
                + ["--seed", str(seed + i), "--regency", regency],
                check=True,
            )
        parts.append(part)
    tmp = world.with_name(world.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for table in ("population", "crosswalk", "dtks", "bpjs", "truth"):
        merged = pa.concat_tables([pq.read_table(p / f"{table}.parquet") for p in parts], promote_options="default")
        pq.write_table(merged, tmp / f"{table}.parquet")
    handles = [open(p / "submissions.jsonl", "rb") for p in parts]  # noqa: SIM115 (closed below)
    try:
        with open(tmp / "submissions.jsonl", "wb") as out:
            live = list(handles)
            while live:
                for fh in list(live):
                    line = fh.readline()
                    if line:
                        out.write(line)
                    else:
                        live.remove(fh)
    finally:
        for fh in handles:
            fh.close()
    tmp.rename(world)
    return world


def ensure_model(given: str | None) -> Path:
    if given:
        return Path(given)
    models = sorted((BENCH_DIR / "models").glob("members-*"))
    if models:
        return models[-1]
    train_world = BENCH_DIR / "train-world-50000-s7"
    if not (train_world / "submissions.jsonl").exists():
        subprocess.run([CLI, "generate", "--out", str(train_world), "--persons", "50000", "--seed", "7"], check=True)
    subprocess.run(
        [
            CLI,
            "train",
            "--source",
            "members",
            "--world",
            str(train_world),
            "--out",
            str(BENCH_DIR / "models"),
            "--no-charts",
        ],
        check=True,
    )
    return sorted((BENCH_DIR / "models").glob("members-*"))[-1]


def read_slices(world: Path, sizes: list[int]) -> list[Slice]:
    """Consecutive slices of the submissions file holding at least `sizes[i]` members each."""
    slices: list[Slice] = []
    current: Slice = []
    members = 0
    with open(world / "submissions.jsonl", "rb") as fh:
        for line in fh:
            raw = line.rstrip(b"\r\n")
            doc = json.loads(raw)
            k = doc["family_key"]
            key = "".join(
                k[f]
                for f in (
                    "province",
                    "regency",
                    "district",
                    "village",
                    "sls",
                    "sub_sls",
                    "building_serial",
                    "family_serial",
                )
            ).encode()
            current.append((key, raw, len(doc["members"])))
            members += len(doc["members"])
            if members >= sizes[len(slices)]:
                slices.append(current)
                current, members = [], 0
                if len(slices) == len(sizes):
                    return slices
    raise SystemExit(f"the world has too few submissions for {sizes} members")


def expected_keys(part: Slice) -> int:
    """Distinct member keys of the slice (latest revision per family)."""
    latest: dict[bytes, tuple[int, int]] = {}
    for key, raw, _ in part:
        doc = json.loads(raw)
        if key not in latest or doc["revision"] >= latest[key][0]:
            latest[key] = (doc["revision"], len({m["serial"] for m in doc["members"]}))
    return sum(n for _, n in latest.values())


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_phase(
    name: str,
    bootstrap: str,
    topics: PipelineTopics,
    part: Slice,
    rate: float | None,
    pids: dict[str, list[int | None]],
    *,
    passthrough: bool = False,
    paused: list[int | None] | None = None,
) -> dict[str, Any]:
    """Stream `part` at `rate` and wait for its outputs. `paused`: service pids stopped (SIGSTOP) while
    the whole slice is produced and resumed after: the services then drain a backlog at their maximum.
    `pids`: the processes whose CPU is measured, by role (several instances of one role are summed)."""
    records = [(k, v) for k, v, _ in part]
    members = [n for _, _, n in part]
    per_record = {k: n for k, _, n in part} if passthrough else None
    want = len({k for k, _, _ in part}) if passthrough else expected_keys(part)
    streamer = SubmissionStreamer(bootstrap, topics.submissions, records, members, rate=rate)
    watcher = OutputWatcher(bootstrap, topics.members, streamer, members_per_record=per_record, from_end=True)
    watcher.start()
    watcher.ready.wait(60)
    if paused is not None:
        for pid in filter(None, paused):
            os.kill(pid, signal.SIGSTOP)
        streamer.start()
        streamer.join()
        watcher.not_before = time.time()
        for pid in filter(None, paused):
            os.kill(pid, signal.SIGCONT)
    cpu0 = {who: sum(map(cpu_seconds, group)) for who, group in pids.items()}
    t0 = time.time()
    if paused is None:
        streamer.start()
    last_progress, last_distinct = time.time(), -1
    while True:
        time.sleep(0.5)
        fig = watcher.figures()
        if fig.distinct >= want and not streamer.is_alive():
            break
        if fig.distinct != last_distinct:
            last_progress, last_distinct = time.time(), fig.distinct
        elif time.time() - last_progress > 120:
            print(f"  {name}: stalled at {fig.distinct:,}/{want:,}", flush=True)
            break
    wall = time.time() - t0
    watcher.stop()
    watcher.join(10)
    fig = watcher.figures()
    span = max(fig.last_at - max(streamer.started_at, watcher.not_before), 1e-9)
    offered_span = max(streamer.finished_at - streamer.started_at, 1e-9)
    linked = fig.members if passthrough else fig.distinct
    result = {
        "phase": name,
        "offered_members_per_s": rate,
        "sent_members": streamer.sent_members,
        "sent_rate": streamer.sent_members / offered_span,
        "linked_members": linked,
        "expected": want,
        "throughput_members_per_s": linked / span,
        "latency_ms": {q: percentile(fig.latencies_ms, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "records": fig.records,
        "wall_s": wall,
        "backlog": paused is not None,
        "cpu_s": {who: sum(map(cpu_seconds, group)) - cpu0[who] for who, group in pids.items()},
    }
    lat = result["latency_ms"]
    assert isinstance(lat, dict)
    print(
        f"  {name:<22} sent {streamer.sent_members:>7,} at {result['sent_rate']:>7,.0f}/s  linked {linked:>7,}"
        f"/{want:,}  {result['throughput_members_per_s']:>7,.0f} members/s  p50 {lat['p50']:.0f} p95 "
        f"{lat['p95']:.0f} p99 {lat['p99']:.0f} ms",
        flush=True,
    )
    return result


def start_service(
    module: str,
    bootstrap: str,
    topics: PipelineTopics,
    group: str,
    state: Path,
    world: Path | None,
    model: Path | None,
    env: dict[str, str],
    *,
    link_store: Path | None = None,
    log_name: str | None = None,
) -> LinkerProcess:
    for stale in ("links.duckdb", "links.duckdb.wal", "links", "faust"):
        target = state / stale
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    # Generous group timings: the max phase pauses the service (SIGSTOP) while it builds the backlog.
    env = {
        "BROKER_SESSION_TIMEOUT": "60.0",
        "BROKER_HEARTBEAT_INTERVAL": "3.0",
        "BROKER_REBALANCE_TIMEOUT": "60.0",
        **env,
    }
    proc = LinkerProcess(
        bootstrap=bootstrap,
        group=group,
        state_dir=state,
        topics=topics,
        world_dir=world,
        model_path=model,
        module=module,
        extra_env=env,
        link_store_dir=link_store,
        log_path=state.parent / f"{log_name or group}.log",
    )
    t0 = time.time()
    if not proc.wait_for_log("Ready", 900):
        raise SystemExit(f"{module} did not become ready:\n{proc.log_tail()}")
    print(f"{module} ready in {time.time() - t0:.1f} s (pid {proc.pid})", flush=True)
    return proc


BATCH_LINE = re.compile(
    r"batch: (\d+) records, .*?(\d+) members linked.*?decode\+link ([\d.]+) s, "
    r"produce\+acks ([\d.]+) s, store ([\d.]+) s"
)


def batch_split(log: Path, since: int) -> dict[str, float]:
    """The linker's own per-batch timings (its log lines) summed over a phase: where a batch's time goes."""
    with open(log, "rb") as fh:
        fh.seek(since)
        text = fh.read().decode(errors="replace")
    totals = {"batches": 0.0, "members": 0.0, "decode+link s": 0.0, "produce+acks s": 0.0, "store s": 0.0}
    for m in BATCH_LINE.finditer(text):
        totals["batches"] += 1
        totals["members"] += int(m.group(2))
        for name, value in zip(("decode+link s", "produce+acks s", "store s"), m.groups()[2:], strict=True):
            totals[name] += float(value)
    return totals


def start_linkers(
    count: int,
    bootstrap: str,
    topics: PipelineTopics,
    run: Path,
    world: Path,
    model: Path,
    persons: int,
    env: dict[str, str],
) -> list[LinkerProcess]:
    """`count` profiled linker instances in one group: own state folders, one shared link-store folder."""
    shared = run / "links"
    shutil.rmtree(shared, ignore_errors=True)
    linkers = []
    for i in range(count):
        state = BENCH_DIR / f"pipeline-linker-{persons}" / f"instance-{i}"
        cache = state / "prepared-master"
        if not cache.exists():  # bench/engine.py's prepared master of the same world, when it is there
            cache.mkdir(parents=True)
            for f in (BENCH_DIR / "prepared").glob("prepared-master-*.parquet"):
                shutil.copy(f, cache / f.name)
        profile = run / f"linker-profile-{i}.json"
        profile.unlink(missing_ok=True)
        linkers.append(
            start_service(
                "tools.pipeline.profiled_linker",
                bootstrap,
                topics,
                "bench-linker",
                state,
                world,
                model,
                {"REGSOSEK_PROFILE_OUT": str(profile), **env},
                link_store=shared,
                log_name=f"bench-linker-{i}",
            )
        )
    return linkers


def sum_samples(snapshots: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for snap in snapshots:
        for k, v in snap.items():
            total[k] = total.get(k, 0) + v
    return total


def sum_splits(splits: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(s[k] for s in splits) for k in splits[0]} if splits else {}


def profile_shares(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    busy = {k: v for k, v in diff.items() if k != "idle" and v > 0}
    total = sum(busy.values()) or 1
    return {k: v / total for k, v in sorted(busy.items(), key=lambda kv: -kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master-persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--model", default=None)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per offered-load phase")
    parser.add_argument("--loads", default="200,1000", help="offered loads in members/s before the maximum")
    parser.add_argument("--max-members", type=int, default=60_000, help="members of the maximum phase")
    parser.add_argument(
        "--linker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra linker setting, e.g. REGSOSEK_LINKER_BATCH_WAIT_SECONDS=0.02 (repeatable)",
    )
    parser.add_argument(
        "--linkers",
        type=int,
        default=2,
        help="linker instances in one consumer group (4 partitions; default 2: both cores)",
    )
    parser.add_argument(
        "--regencies",
        default="",
        help="comma-separated regency codes: a world merged from one generated world per regency "
        "(e.g. 3603,3201,3301,3506); default: one regency (3603)",
    )
    parser.add_argument("--report", action="store_true", help="print the report of the last run and exit")
    args = parser.parse_args()
    if args.report:
        report(json.loads((BENCH_DIR / "pipeline-results.json").read_text()))
        return
    linker_env = dict(item.split("=", 1) for item in args.linker_env)
    loads = [float(x) for x in args.loads.split(",") if x]
    regencies = [r for r in args.regencies.split(",") if r]
    world, model = ensure_world(args.master_persons, args.seed, regencies), ensure_model(args.model)
    sizes = [2000] + [int(rate * args.duration) for rate in loads] + [args.max_members]
    slices = read_slices(world, sizes)
    load_before = os.getloadavg()
    print(f"world {world.name}, model {model.name}, {os.cpu_count()} CPUs, load {load_before}", flush=True)

    run = BENCH_DIR / "pipeline-run"
    broker_dir = run / "broker"
    shutil.rmtree(broker_dir, ignore_errors=True)
    port, controller_port = broker_service.free_ports(2)
    config = broker_service.BrokerConfig(run_dir=broker_dir, port=port, controller_port=controller_port, heap="1g")
    status = broker_service.start(config)
    bootstrap = config.bootstrap
    results: dict[str, Any] = {
        "args": vars(args),
        "world": str(world),
        "model": str(model),
        "loadavg_before": load_before,
        "cpus": os.cpu_count(),
    }
    try:
        topics = provision_private_topics(bootstrap, "bench")
        linkers = start_linkers(args.linkers, bootstrap, topics, run, world, model, args.master_persons, linker_env)
        profiles = [Path(p.env["REGSOSEK_PROFILE_OUT"]) for p in linkers]
        pids = {"linker": [p.pid for p in linkers], "broker": [status.pid]}
        phases = [run_phase("warm-up", bootstrap, topics, slices[0], None, pids)]
        for rate, part in zip(loads, slices[1:-1], strict=True):
            phases.append(run_phase(f"offered {rate:,.0f}/s", bootstrap, topics, part, rate, pids))
        before = [read_samples(p) for p in profiles]
        log_marks = [p.log_size() for p in linkers]
        phases.append(run_phase("max (backlog)", bootstrap, topics, slices[-1], None, pids, paused=pids["linker"]))
        time.sleep(1.5)  # the sampler writes once a second
        results["profile_max"] = profile_shares(sum_samples(before), sum_samples([read_samples(p) for p in profiles]))
        splits = [batch_split(p.log_path, mark) for p, mark in zip(linkers, log_marks, strict=True)]
        results["batch_split_max"] = sum_splits(splits)
        for p in linkers:
            p.stop()

        pt_topics = provision_private_topics(bootstrap, "passthrough")
        passthroughs = [
            start_service(
                "tools.pipeline.passthrough",
                bootstrap,
                pt_topics,
                "bench-passthrough",
                run / f"passthrough-{i}",
                None,
                None,
                {},
                log_name=f"bench-passthrough-{i}",
            )
            for i in range(args.linkers)
        ]
        pt_pids = [p.pid for p in passthroughs]
        pt = run_phase(
            "pass-through max",
            bootstrap,
            pt_topics,
            slices[-1],
            None,
            {"passthrough": pt_pids, "broker": [status.pid]},
            passthrough=True,
            paused=pt_pids,
        )
        for p in passthroughs:
            p.stop()
    finally:
        broker_service.stop(config)
    results.update(phases=phases, passthrough=pt, loadavg_after=os.getloadavg())
    report(results)
    (BENCH_DIR / "pipeline-results.json").write_text(json.dumps(results, indent=2))


def report(results: dict[str, Any]) -> None:
    phases, pt = results["phases"], results["passthrough"]
    top = phases[-1]
    share = top["throughput_members_per_s"] / max(pt["throughput_members_per_s"], 1e-9)
    print(
        f"\n{'phase':<24} {'offered/s':>9} {'linked members/s':>17} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'linker CPU s':>13} {'broker CPU s':>13}"
    )
    for p in [*phases, pt]:
        lat, cpu = p["latency_ms"], p["cpu_s"]
        offered = "max" if p["offered_members_per_s"] is None else f"{p['offered_members_per_s']:,.0f}"
        print(
            f"{p['phase']:<24} {offered:>9} {p['throughput_members_per_s']:>17,.0f} {lat['p50']:>8.0f} "
            f"{lat['p95']:>8.0f} {lat['p99']:>8.0f} {cpu.get('linker', cpu.get('passthrough', 0)):>13.1f} "
            f"{cpu['broker']:>13.1f}"
        )
    print(
        f"\npipeline maximum = {share:.1%} of raw pass-through "
        f"({top['throughput_members_per_s']:,.0f} vs {pt['throughput_members_per_s']:,.0f} members/s)"
    )
    linker_cpu = top["cpu_s"]["linker"] / max(top["wall_s"], 1e-9)
    count = results["args"].get("linkers", 1)
    print(
        f"linker CPU over the max phase ({count} instance(s) together): {linker_cpu:.0%} of one core; "
        "stage shares of their busy samples:"
    )
    for stage, frac in results["profile_max"].items():
        print(f"  {stage:<18} {frac:6.1%}")
    split = results.get("batch_split_max", {})
    steps = {k: v for k, v in split.items() if k.endswith(" s")}
    if split.get("batches"):
        total = sum(steps.values()) or 1.0
        parts = ", ".join(f"{k[:-2]} {v:.1f} s ({v / total:.0%})" for k, v in steps.items())
        print(
            f"linker's own batch timings over the max phase ({split['batches']:.0f} batches, "
            f"{split['members']:,.0f} members): {parts}"
        )
    print(
        f"bound: see the split above and the stage shares; load average before {results['loadavg_before']}, "
        f"after {results['loadavg_after']}"
    )
    results["passthrough_share"] = share
    results["linker_cpu_share_max"] = linker_cpu


if __name__ == "__main__":
    main()
