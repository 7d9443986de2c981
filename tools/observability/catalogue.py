"""Every metric name the services export, for checks of dashboards and alert rules against it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from ruamel.yaml import YAML

from contracts.subscriptions import SubscriptionRegistry
from services.observability.gateway_metrics import GatewayMetrics
from services.observability.linker_metrics import LinkerMetrics
from services.observability.region import RegionProgress
from services.publisher.metrics import PublisherMetrics
from services.review.metrics import ReviewMetrics
from tools.broker import JMX_EXPORTER_CONFIG


def exported_series_names() -> frozenset[str]:
    """Names of every sample the gateway, linker, review app and publisher export (`_total`, `_bucket`, ...).

    Built from fresh registries with the same classes the services use, so a renamed metric shows up
    here at once. Process and platform collectors are not included (the services do not register them).
    """
    gateway, linker, review, publisher = (CollectorRegistry() for _ in range(4))
    PublisherMetrics(publisher, SubscriptionRegistry(registry_version=1, subscriptions=()))
    GatewayMetrics(gateway)
    LinkerMetrics(linker)
    RegionProgress(linker, {})
    ReviewMetrics(review)
    names: set[str] = set()
    for family in [*gateway.collect(), *linker.collect(), *review.collect(), *publisher.collect()]:
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return frozenset(names)


def broker_series_names() -> frozenset[str]:
    """Names the broker's JMX exporter agent exports under its rules (infra/kafka/jmx-exporter.yaml).

    The integration test tests/integration/test_broker_metrics.py shows each is really scraped.
    """
    rules = YAML(typ="safe").load(JMX_EXPORTER_CONFIG.read_text(encoding="utf-8"))["rules"]
    return frozenset(str(rule["name"]) for rule in rules)
