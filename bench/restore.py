"""Benchmark: how long an instance with an empty disk takes to restore a partition from the changelog.

Issue 12 asks for the restore time of a lost instance (docs/capacity.md). This measures the part that
grows with the state: reading one partition of the link-state changelog from a real broker and writing
it into an empty link-store file (`services.linker.changelog.restore`, the code a linker runs when it is
given a partition whose file is missing).

1. The families of the demo world (`.run/demo`, written by `make demo`; or `--world`) are linked with a
   deterministic NIK-only engine (tests/support's fake: the record shapes are the production ones, the
   engine does not matter here) and turned into changelog records.
2. Those records are cloned under new family keys until `--families` records exist, and produced to a
   one-partition compacted topic on a dedicated broker (tools/broker.py, free ports).
3. `restore` reads the partition from offset 0 into a new DuckDB file: the wall time, split into the
   Kafka read and the store write, families/s and MB/s. Then a second restore of the now current file
   (reads nothing).
4. With `--chunk-records N`, the same partition is then restored again into a new file by the linker's
   own chunked restore (`changelog.restore`, at most N records held at a time), in a fresh process,
   and so is the whole-partition read of step 3: each prints its wall time and its process's peak
   RSS, so the memory the chunks save is measured apart from the records this script generated.

    PYTHONPATH=$PWD .venv/bin/python bench/restore.py                  # 50,000 families
    PYTHONPATH=$PWD .venv/bin/python bench/restore.py --families 200000
    PYTHONPATH=$PWD .venv/bin/python bench/restore.py --families 20000 --chunk-records 5000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

from contracts.decode import ContractViolation, decode_family_submission  # noqa: E402
from contracts.topics import LINK_STATE_CHANGELOG, topic_spec  # noqa: E402
from integration.ids import PersonIds  # noqa: E402
from linkage.records import family_key_string  # noqa: E402
from services.kafka.clients import KafkaProducer  # noqa: E402
from services.kafka.topics import provision  # noqa: E402
from services.linker import changelog  # noqa: E402
from services.linker.changelog_kafka import KafkaChangelogReader  # noqa: E402
from services.linker.pipeline import OutputTopics, SubmissionLinker  # noqa: E402
from services.linker.store import LinkStore  # noqa: E402
from tests.support.linker import FakeMasterPerson, FakeMemberLinker  # noqa: E402
from tests.support.linking import link_batch  # noqa: E402
from tools import broker as broker_service  # noqa: E402

TOPIC = "bench.linker.state.changelog"


def base_records(world: Path) -> list[tuple[str, bytes]]:
    """(family key, encoded changelog record) of every family of the world, linked by NIK."""
    people = [
        FakeMasterPerson(p["nik"], p["full_name"], p.get("kk_number") or "")
        for p in pq.read_table(world / "population.parquet").to_pylist()
        if p.get("nik")
    ]
    pipeline = SubmissionLinker(FakeMemberLinker.of(people), PersonIds(b"bench"), OutputTopics("m", "f", "r"))
    store = LinkStore(":memory:")
    submissions = []
    for line in (world / "submissions.jsonl").read_bytes().splitlines():
        key = family_key_string(json.loads(line)["family_key"]).encode()
        try:
            submissions.append(decode_family_submission(line, key=key))
        except ContractViolation:  # the world's invalid submissions (the linker dead-letters them)
            continue
    latest: dict[str, bytes] = {}
    for start in range(0, len(submissions), 200):
        result = link_batch(pipeline, store, submissions[start : start + 200])
        for record in changelog.family_records(result.update, lambda keys: {}):
            latest[record.family_key] = changelog.encode(record)
        store.apply(result.update)
    return sorted(latest.items())


def cloned(base: list[tuple[str, bytes]], count: int) -> list[tuple[bytes, bytes]]:
    """`count` records: the base ones under new, unique family keys (district kept, the rest numbered)."""
    out: list[tuple[bytes, bytes]] = []
    n = 0
    while len(out) < count:
        for key, value in base:
            if len(out) == count:
                break
            new = f"{key[:7]}{n:015d}"
            out.append((new.encode(), value.replace(key.encode(), new.encode())))
            n += 1
    return out


def measure(bootstrap: str, chunk_records: int) -> None:
    """One restore of partition 0 into a new file, in this (fresh) process: 0 = the whole partition read
    at once then written, N = the linker's chunked restore; prints the wall time and the peak RSS."""
    reader = KafkaChangelogReader(bootstrap, TOPIC, timeout_s=3600)
    with tempfile.TemporaryDirectory() as folder:
        store = LinkStore(Path(folder) / "links-p0.duckdb")
        t0 = time.perf_counter()
        if chunk_records:
            read = changelog.restore(store, 0, reader, chunk_records=chunk_records)
        else:
            values, end = reader.read(0, 0)
            read = len(values)
            store.replace_families(changelog.records_update(changelog.latest_per_family(values, 0)), {0: end})
        wall = time.perf_counter() - t0
        families = store.counts()["families"]
        store.close()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent (this script's
    # generating process, about 1.5 GB), VmHWM belongs to this process's own address space.
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    rss = int(hwm.split()[1]) / 1024
    how = f"chunks of {chunk_records:,}" if chunk_records else "whole partition"
    print(f"  {how:>22}: {read:,} records, {families:,} families in {wall:6.1f} s, peak RSS {rss:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", type=int, default=50_000)
    parser.add_argument("--world", type=Path, default=ROOT / ".run" / "demo")
    parser.add_argument("--chunk-records", type=int, default=0, help="also compare the chunked restore (step 4)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run" / "bench" / "restore")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: BOOTSTRAP of a step-4 process
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.chunk_records)
        return
    if not (args.world / "submissions.jsonl").is_file():
        sys.exit(f"no world in {args.world}: run `make demo` first, or give --world")

    base = base_records(args.world)
    records = cloned(base, args.families)
    total_bytes = sum(len(v) for _, v in records)
    print(
        f"{len(base):,} families of {args.world.name} -> {len(records):,} changelog records, "
        f"{total_bytes / 1e6:,.1f} MB (mean {total_bytes / len(records):,.0f} bytes per family)"
    )

    run = args.run_dir
    shutil.rmtree(run, ignore_errors=True)
    port, controller_port = broker_service.free_ports(2)
    config = broker_service.BrokerConfig(run_dir=run / "broker", port=port, controller_port=controller_port, heap="1g")
    broker_service.start(config)
    try:
        spec = dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=TOPIC, partitions=1)
        report = provision(config.bootstrap, [spec])
        assert not report.differences, report.differences
        producer = KafkaProducer(
            bootstrap_servers=config.bootstrap, acks="all", linger_ms=5, batch_size=262_144, max_request_size=1_048_576
        )
        started = time.perf_counter()
        for key, value in records:
            producer.send(TOPIC, key=key, value=value, partition=0)
        producer.flush()
        producer.close()
        print(f"produced in {time.perf_counter() - started:.1f} s")

        reader = KafkaChangelogReader(config.bootstrap, TOPIC, timeout_s=3600)
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            values, end = reader.read(0, 0)
            t1 = time.perf_counter()
            store = LinkStore(Path(folder) / "links-p0.duckdb")
            latest = changelog.latest_per_family(values, 0)
            t2 = time.perf_counter()
            store.replace_families(changelog.records_update(latest), {0: end})
            t3 = time.perf_counter()
            assert len(latest) == len(records), (len(latest), len(records))
            again = changelog.restore(store, 0, reader)
            t4 = time.perf_counter()
            store.close()
            size = (Path(folder) / "links-p0.duckdb").stat().st_size
        wall = t3 - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"restore of {len(latest):,} families ({total_bytes / 1e6:,.1f} MB of changelog) into an empty file:")
        print(f"  read from Kafka  {t1 - t0:7.1f} s  ({total_bytes / 1e6 / (t1 - t0):,.1f} MB/s)")
        print(f"  decode           {t2 - t1:7.1f} s")
        print(f"  write the file   {t3 - t2:7.1f} s  (DuckDB file {size / 1e6:,.1f} MB)")
        rate = f"{len(latest) / wall:,.0f} families/s, {total_bytes / 1e6 / wall:,.1f} MB/s"
        print(f"  total            {wall:7.1f} s  = {rate}")
        print(f"  a current file: {again} families read again in {t4 - t3:.2f} s")
        print(f"  peak RSS of this process {rss:,.0f} MB (the read holds the whole partition in memory)")
        if args.chunk_records:
            print("each in a fresh process:")
            for chunk in (0, args.chunk_records):
                command = [sys.executable, __file__, "--measure", config.bootstrap, "--chunk-records", str(chunk)]
                subprocess.run(command, check=True)
    finally:
        broker_service.stop(config)


if __name__ == "__main__":
    main()
