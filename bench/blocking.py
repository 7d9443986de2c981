"""Blocking recall and block sizes: does each survey member's true master record share a blocking key?

    PYTHONPATH=$PWD .venv/bin/python bench/blocking.py --world WORLD_DIR [--queries 100000]

For the first `--queries` survey members of a generated world (`regsosek generate`, any profile) and its
master: per blocking rule, the (record, master) pairs it makes per record (equal, non-NULL values on all
its columns; a pair two rules both make counts twice); per rule set, the share of the members whose
true person (truth.parquet) is in the master and reachable through at least one rule (pair
completeness: an upper bound on recall, whatever the scoring), and the noise kinds of those missed.
Rule sets: `current` (linkage.comparisons.BLOCKING_RULES["members"]) and `before` (the rules up to
issue 12, whose blocks grew with the master). Reads and prepares the world only; no model is needed.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

BEFORE = (
    ("nik",),
    ("name_key", "birth_year"),
    ("given_name_key", "village_code"),
    ("birth_date", "sex"),
    ("kk_number",),
)


def main() -> None:
    from engine import _query_records

    from linkage.comparisons import BLOCKING_RULES
    from linkage.normalise.prepare import prepare_table
    from linkage.records import population_records
    from linkage.spec import blocked_pairs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="a generated world folder")
    parser.add_argument("--queries", type=int, default=100_000)
    args = parser.parse_args()
    world = Path(args.world)
    if not (world / "truth.parquet").exists():
        raise SystemExit(f"error: {world} is not a generated world (no truth.parquet)")
    start = time.perf_counter()
    master = prepare_table(population_records(pq.read_table(world / "population.parquet")))
    queries = prepare_table(_query_records(world, args.queries))
    truth = pq.read_table(world / "truth.parquet").filter(pc.equal(pc.field("source"), "member"))
    true_nik = dict(zip(truth.column("record_id").to_pylist(), truth.column("true_nik").to_pylist(), strict=True))
    noise = dict(zip(truth.column("record_id").to_pylist(), truth.column("noise").to_pylist(), strict=True))
    row_of = {r: i for i, r in enumerate(master.column("record_id").to_pylist())}
    ids = queries.column("record_id").to_pylist()
    pairs = [(i, row_of[true_nik[r]]) for i, r in enumerate(ids) if true_nik.get(r) in row_of]
    q = queries.take([i for i, _ in pairs])
    m = master.take([j for _, j in pairs])
    print(
        f"{master.num_rows:,} master rows, {queries.num_rows:,} members ({len(pairs):,} in the master); "
        f"prepared in {time.perf_counter() - start:.0f} s"
    )
    equal: dict[str, np.ndarray] = {}

    def reached(rule: tuple[str, ...]) -> np.ndarray:
        hit = np.ones(len(pairs), dtype=np.bool_)
        for column in rule:
            if column not in equal:
                same = pc.fill_null(pc.equal(q.column(column), m.column(column)), False)
                equal[column] = np.asarray(same.to_numpy(zero_copy_only=False), dtype=np.bool_)
            hit &= equal[column]
        return hit

    sets = {"before": BEFORE, "current": BLOCKING_RULES["members"]}
    per_rule = {
        rule: blocked_pairs(master, queries, rule) / queries.num_rows for rules in sets.values() for rule in rules
    }
    for name, rules in sets.items():
        hit = np.zeros(len(pairs), dtype=np.bool_)
        for rule in rules:
            hit |= reached(rule)
        missed: collections.Counter[str] = collections.Counter()
        for k in np.flatnonzero(~hit).tolist():
            missed.update((noise[ids[pairs[k][0]]] or "").split("|"))
        print(f"\n{name}: pair completeness {hit.mean():.5f} ({int((~hit).sum()):,} missed)")
        for rule in rules:
            print(f"  {' + '.join(rule):<45} {per_rule[rule]:7.2f} pairs per record")
        print(f"  {'sum over rules':<45} {sum(per_rule[r] for r in rules):7.2f}")
        if missed:
            print("  missed, by noise kind: " + ", ".join(f"{k} {v}" for k, v in missed.most_common(8)))


if __name__ == "__main__":
    main()
