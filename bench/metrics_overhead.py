"""Cost of the linker's metrics per linked member: `.venv/bin/python bench/metrics_overhead.py`.

Links batches of 1000 members through a trivial in-memory linker, bare and observed as the linker runs
it (`PrometheusLinkageObserver` attached to the engine object: decisions for three sources, probability
histogram; then the batch recorder's region progress and members without NIK from the batch result), and
prints the microseconds per member of each and the difference (what metrics add to every batch).
`--store FILE` keeps region progress in a SQLite file, as the deployed linker does.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from integration.port import Band, MemberLink, MemberQuery, report_sectoral
from linkage.observer import NO_OBSERVER, LinkageObserver
from services.observability.linker_metrics import LinkerMetrics
from services.observability.observer import PrometheusLinkageObserver
from services.observability.recorder import BatchRecorder
from services.observability.region import DistrictTarget, RegionProgress
from services.observability.region_store import RegionStore


class InstantLinker:
    """Answers auto_link for everyone at once, so the timing is the observation's own cost."""

    model_version = "bench"

    def __init__(self) -> None:
        self._observer: LinkageObserver = NO_OBSERVER

    def attach_observer(self, observer: LinkageObserver) -> None:
        self._observer = observer

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        nik = "3603121505800002"
        links = [MemberLink(q.record_id, "auto_link", nik, 0.99, 10.0, None, dtks_id="D") for q in members]
        if self._observer is not NO_OBSERVER:  # what the engine reports (see EngineMemberLinker)
            self._observer.batch_linked(len(links), 0.0)
            for link in links:
                self._observer.record_decided("dukcapil", link.band, link.probability, None)
            report_sectoral(self._observer, links)
        return links


@dataclass
class Result:
    """The part of the pipeline's `BatchResult` the recorder reads."""

    family_bands: dict[str, tuple[Band, ...]] = field(default_factory=dict)
    members_without_nik: int = 0


def queries(count: int) -> list[MemberQuery]:
    """`count` members in families of four, all in one district."""
    out = []
    for i in range(count):
        family = f"3603010001000100{i // 4:06d}"
        out.append(
            MemberQuery(
                record_id=f"{family}-{i % 4 + 1:02d}",
                nik=None,
                kk_number=None,
                full_name="",
                sex=None,
                birth_date=None,
                birth_year=None,
                age=None,
                reference_year=2022,
                village_code=None,
                address=None,
                family_key=family,
                head_name="",
            )
        )
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
    recorder = BatchRecorder(metrics, dlq_topic="dlq", region=region)
    bare_linker, observed_linker = InstantLinker(), InstantLinker()
    observed_linker.attach_observer(PrometheusLinkageObserver(metrics))

    def observed(members: Sequence[MemberQuery]) -> list[MemberLink]:
        links = observed_linker.link(members)
        result = Result(members_without_nik=sum(1 for q in members if not q.nik))
        for q, link in zip(members, links, strict=True):
            result.family_bands[q.family_key] = (*result.family_bands.get(q.family_key, ()), link.band)
        recorder.batch_done([], [], 0.0, result)
        return links

    bare = per_member_us(bare_linker.link, batch, args.rounds)
    wrapped = per_member_us(observed, batch, args.rounds)
    print(f"bare linker      {bare:6.2f} us/member")
    print(f"with metrics     {wrapped:6.2f} us/member")
    print(
        f"metrics overhead {wrapped - bare:6.2f} us/member ({(wrapped - bare) * args.members / 1000:.2f} ms per "
        f"{args.members}-member engine call)"
    )


if __name__ == "__main__":
    main()
