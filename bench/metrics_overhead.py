"""Cost of the linker's metrics per linked member: `.venv/bin/python bench/metrics_overhead.py`.

Links batches of 1000 members through a trivial in-memory linker, bare and wrapped by
`ObservedMemberLinker` (decisions for three sources, probability histogram, region progress), and prints
the microseconds per member of each and the difference (what metrics add to every engine call).
`--store FILE` keeps region progress in a SQLite file, as the deployed linker does.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.linker.port import MemberLink, MemberQuery
from services.observability.linker_metrics import LinkerMetrics
from services.observability.observer import ObservedMemberLinker, PrometheusLinkageObserver
from services.observability.region import DistrictTarget, RegionProgress
from services.observability.region_store import RegionStore


class InstantLinker:
    """Answers auto_link for everyone at once, so the timing is the wrapper's own cost."""

    model_version = "bench"

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        nik = "3603121505800002"
        return [MemberLink(q.record_id, "auto_link", nik, 0.99, 10.0, None, dtks_id="D") for q in members]


def queries(count: int) -> list[MemberQuery]:
    """`count` members in families of four, all in one district."""
    out = []
    for i in range(count):
        family = f"3603010001000100{i // 4:06d}"
        out.append(MemberQuery(
            record_id=f"{family}-{i % 4 + 1:02d}", nik="", kk_number="", full_name="", sex="", birth_date="",
            birth_year=None, age=None, reference_year=2022, village_code="", bps_village_code=family[:10],
            address="", family_key=family, head_name="",
        ))  # fmt: skip
    return out


Link = Callable[[Sequence[MemberQuery]], list[MemberLink]]


def per_member_us(link: Link, batch: list[MemberQuery], rounds: int) -> float:
    link(batch)  # warm-up: label children and families created once
    started = time.perf_counter()
    for _ in range(rounds):
        link(batch)
    return (time.perf_counter() - started) / rounds / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--store", type=Path, default=None, help="SQLite file for region progress (as deployed)")
    args = parser.parse_args()
    batch = queries(args.members)
    registry = CollectorRegistry()
    metrics = LinkerMetrics(registry)
    store = RegionStore(args.store) if args.store else None
    region = RegionProgress(registry, {"360312": DistrictTarget(10, 40)}, {"3603010": "360312"}, store)
    inner = InstantLinker()
    observed = ObservedMemberLinker(inner, PrometheusLinkageObserver(metrics), metrics=metrics, region=region)
    bare = per_member_us(inner.link, batch, args.rounds)
    wrapped = per_member_us(observed.link, batch, args.rounds)
    print(f"bare linker      {bare:6.2f} us/member")
    print(f"with metrics     {wrapped:6.2f} us/member")
    print(f"metrics overhead {wrapped - bare:6.2f} us/member ({(wrapped - bare) * args.members / 1000:.2f} ms per "
          f"{args.members}-member engine call)")


if __name__ == "__main__":
    main()
