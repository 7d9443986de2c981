"""Time the synthetic world generator: `.venv/bin/python bench/generate.py --persons 1000000`.

Target (issue 2): 1,000,000 persons in under 3 minutes on the 2-core build machine. Prints the wall
time of each stage and the total, and exits 1 when the total misses the target.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from synthetic import generate_world

TARGET_SECONDS = 180.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--regency", default="3603")
    parser.add_argument("--keep", type=Path, default=None, help="write the world here instead of a temp dir")
    args = parser.parse_args()

    out = args.keep or Path(tempfile.mkdtemp(prefix="regsosek-bench-"))
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            marks[stage] = time.perf_counter() - started

    try:
        world = generate_world(out, regency=args.regency, persons=args.persons, seed=args.seed, progress=progress)
        total = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.iterdir())
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    previous = 0.0
    for stage, at in marks.items():
        print(f"{stage:<12} {at - previous:7.1f} s")
        previous = at
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"total        {total:7.1f} s for {world.persons:,} persons, "
        f"{world.submission_count:,} submissions, {world.member_records:,} member records; "
        f"{size / 2**20:.0f} MiB on disk; peak RSS {peak_mib:.0f} MiB"
    )
    ok = total < TARGET_SECONDS or args.persons < 1_000_000
    print("within target" if ok else f"SLOWER than the {TARGET_SECONDS:.0f} s target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
