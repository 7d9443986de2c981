"""Blocking-key index lookups: `RuleIndex.lookup` against searching the keys in query order.

    PYTHONPATH=$PWD .venv/bin/python bench/key_index.py [--sizes 1000000,10000000] [--batch 1000]

One rule's index over `size` master rows with random codes (every key distinct, so the sorted key
array has `size` entries, as a near-unique rule at that master size), queried with batches of
`--batch` keys, half of them present. Prints microseconds per batch for the index as built (searches
in sorted key order) and for the baseline (the same two `searchsorted` calls in query order), their
ratio, and the ratio of the largest size to the smallest (flat would be 1.0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linkage.engine.blocking import RuleIndex, key_hashes  # noqa: E402


def per_batch_us(fn: object, batches: list[np.ndarray], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for codes in batches:
            fn(codes)  # type: ignore[operator]
    return (time.perf_counter() - start) / (repeat * len(batches)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(20261207)
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        codes = rng.permutation(size).astype(np.int32)
        index = RuleIndex([codes])
        keys, _ = key_hashes([codes])
        ordered_keys = np.sort(keys)
        batches = []
        for _ in range(10):
            present = rng.choice(codes, args.batch // 2)
            absent = rng.integers(size, 2 * size, args.batch - args.batch // 2).astype(np.int32)
            batches.append(np.concatenate([present, absent]))

        def built(batch: np.ndarray, index: RuleIndex = index) -> object:
            return index.lookup([batch])

        def query_order(batch: np.ndarray, ordered_keys: np.ndarray = ordered_keys) -> tuple[np.ndarray, np.ndarray]:
            hashes, _ = key_hashes([batch])
            return np.searchsorted(ordered_keys, hashes, "left"), np.searchsorted(ordered_keys, hashes, "right")

        # Same answers: the pairs found per query.
        q_idx, _ = index.lookup([batches[0]])
        lo, hi = query_order(batches[0])
        assert np.array_equal(np.bincount(q_idx, minlength=args.batch), hi - lo)
        for fn in (built, query_order):  # warm
            per_batch_us(fn, batches, 1)
        t_built = per_batch_us(built, batches, args.repeat)
        t_base = per_batch_us(query_order, batches, args.repeat)
        results[size] = (t_built, t_base)
        print(
            f"{size:>11,} rows: index {t_built:8.1f} us/batch, query-order search {t_base:8.1f} us/batch, "
            f"ratio {t_built / t_base:.2f}",
            flush=True,
        )
    sizes = sorted(results)
    if len(sizes) > 1:
        lo_size, hi_size = sizes[0], sizes[-1]
        print(
            f"{hi_size:,} / {lo_size:,} rows: index {results[hi_size][0] / results[lo_size][0]:.2f}x, "
            f"query-order {results[hi_size][1] / results[lo_size][1]:.2f}x (flat = 1.00)"
        )


if __name__ == "__main__":
    main()
