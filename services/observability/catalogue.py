"""Every metric name the services export, for checks of dashboards and alert rules against it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.observability.gateway_metrics import GatewayMetrics
from services.observability.linker_metrics import LinkerMetrics
from services.observability.region import RegionProgress
from services.review.metrics import ReviewMetrics


def exported_series_names() -> frozenset[str]:
    """Names of every sample the gateway, linker and review app can export (`_total`, `_bucket`, ... included).

    Built from fresh registries with the same classes the services use, so a renamed metric shows up
    here at once. Process and platform collectors are not included (the services do not register them).
    """
    gateway, linker, review = CollectorRegistry(), CollectorRegistry(), CollectorRegistry()
    GatewayMetrics(gateway)
    LinkerMetrics(linker)
    RegionProgress(linker, {})
    ReviewMetrics(review)
    names: set[str] = set()
    for family in [*gateway.collect(), *linker.collect(), *review.collect()]:
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return frozenset(names)
