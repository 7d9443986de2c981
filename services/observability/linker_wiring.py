"""Composition of the linker's observability: one registry, its metrics, the observed engine port.

`instrument_linker` is what the linker's runner calls: it wraps the `MemberLinker` so every engine call
is observed, prepares the batch recorder for the faust handler, reports the master, and (with a world
folder) loads the district targets for region progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.linker.port import MemberLinker
from services.observability.linker_metrics import LinkerMetrics
from services.observability.observer import ObservedMemberLinker, PrometheusLinkageObserver
from services.observability.recorder import BatchRecorder
from services.observability.region import DistrictTarget, RegionProgress, targets_from_world


@dataclass(frozen=True)
class LinkerInstrumentation:
    """Everything the linker needs to report metrics."""

    registry: CollectorRegistry
    metrics: LinkerMetrics
    observer: PrometheusLinkageObserver
    recorder: BatchRecorder
    region: RegionProgress
    linker: ObservedMemberLinker


def instrument_linker(
    linker: MemberLinker,
    *,
    consumed_topics: Iterable[str],
    produced_topics: Iterable[str],
    dlq_topic: str,
    world_dir: Path | None = None,
    master_records: int | None = None,
    registry: CollectorRegistry | None = None,
) -> LinkerInstrumentation:
    """Wrap `linker` and build the metrics on `registry` (a new one by default)."""
    registry = registry or CollectorRegistry()
    metrics = LinkerMetrics(
        registry,
        consumed_topics=consumed_topics,
        produced_topics=produced_topics,
        model_version=linker.model_version,
    )
    observer = PrometheusLinkageObserver(metrics)
    targets: dict[str, DistrictTarget] = {}
    bps: dict[str, str] = {}
    if world_dir is not None and (world_dir / "population.parquet").is_file():
        targets, bps = targets_from_world(world_dir)
        master = world_dir / "population.parquet"
        if master_records is None:
            master_records = sum(t.members for t in targets.values())
        observer.master_loaded(master_records, master.stat().st_mtime)
    elif master_records is not None:
        observer.master_loaded(master_records, time.time())
    region = RegionProgress(registry, targets, bps)
    observed = ObservedMemberLinker(linker, observer, metrics=metrics, region=region)
    recorder = BatchRecorder(metrics, dlq_topic=dlq_topic)
    return LinkerInstrumentation(registry, metrics, observer, recorder, region, observed)
