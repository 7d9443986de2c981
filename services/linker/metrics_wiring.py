"""Composition of the linker's observability: one registry, its metrics, the observer and the recorder.

`instrument_linker` is what the linker's runner calls: it attaches the observer to the engine object
(no wrapper: the same object goes to the pipeline and to the master updates, which need its
`upsert_master`/`set_sectoral`), prepares the batch recorder for the submissions and change handlers,
reports the master, and (with a world folder) loads the district targets for region progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from integration.port import MemberLinker, ObservableLinker
from services.linker.settings import LinkerSettings
from services.observability.exposition import MetricsServer, serve_metrics
from services.observability.linker_metrics import LinkerMetrics
from services.observability.observer import PrometheusLinkageObserver
from services.observability.recorder import BatchRecorder
from services.observability.region import DistrictTarget, RegionProgress, targets_from_world
from services.observability.region_store import RegionStore

log = logging.getLogger("regsosek.linker")


@dataclass(frozen=True)
class LinkerInstrumentation:
    """Everything the linker needs to report metrics."""

    registry: CollectorRegistry
    metrics: LinkerMetrics
    observer: PrometheusLinkageObserver
    recorder: BatchRecorder
    region: RegionProgress


def instrument_linker(
    linker: MemberLinker,
    *,
    consumed_topics: Iterable[str],
    produced_topics: Iterable[str],
    dlq_topic: str,
    world_dir: Path | None = None,
    master_records: int | None = None,
    registry: CollectorRegistry | None = None,
    region_store: Path | None = None,
) -> LinkerInstrumentation:
    """Build the metrics on `registry` (a new one by default) and attach their observer to `linker`.

    `region_store` keeps region progress across restarts (a SQLite file; in memory only without it).
    """
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
        if master_records is None:  # the engine loads every row of the master, dead and moved included
            import pyarrow.parquet as pq

            master_records = pq.ParquetFile(master).metadata.num_rows
        observer.master_loaded(master_records, master.stat().st_mtime)
    elif master_records is not None:
        observer.master_loaded(master_records, time.time())
    region = RegionProgress(registry, targets, bps, RegionStore(region_store) if region_store else None)
    metrics.review_backlog.set(region.review_backlog())  # as reloaded from the store, before the first batch
    if isinstance(linker, ObservableLinker):
        linker.attach_observer(observer)
    else:  # both engines of the service are observable; a third one would lose only the engine metrics
        log.warning("the engine %s reports no calls or decisions: engine metrics stay at 0", type(linker).__name__)
    shard_stats = getattr(linker, "shard_stats", None)
    if callable(shard_stats):  # the real engine: its master shard's figures at each scrape
        metrics.shard.source = shard_stats
    recorder = BatchRecorder(metrics, dlq_topic=dlq_topic, region=region)
    return LinkerInstrumentation(registry, metrics, observer, recorder, region)


def serve_linker_metrics(
    settings: LinkerSettings, linker: MemberLinker, *, master_records: int | None = None
) -> tuple[BatchRecorder, MetricsServer]:
    """Instrument `linker` from the linker's settings and serve /metrics on `settings.metrics_port`.

    Returns the batch recorder to hand to `services.linker.app.build_app` (`linker` itself is unchanged
    but for the attached observer), and the running endpoint. `master_records`: the master's size for an
    injected engine without a world folder (the tests' fake); with a world it is counted from its files.
    """
    consumed = [settings.submissions_topic]
    produced = [settings.dlq_topic, settings.members_topic, settings.families_topic, settings.review_topic]
    if settings.updates_enabled:  # the change reader's records and the update events are counted too
        consumed += [settings.population_changes_topic, settings.dtks_changes_topic, settings.bpjs_changes_topic]
        produced.append(settings.updates_topic)
    inst = instrument_linker(
        linker,
        consumed_topics=consumed,
        produced_topics=produced,
        dlq_topic=settings.dlq_topic,
        world_dir=settings.world_dir,
        master_records=master_records,
        region_store=settings.state_dir / "region-progress.sqlite",
    )
    port = settings.metrics_port if settings.metrics_port is not None else 0
    server = serve_metrics(inst.registry, settings.metrics_host, port)
    log.info("linker metrics on http://%s:%d/metrics", server.host, server.port)
    return inst.recorder, server
