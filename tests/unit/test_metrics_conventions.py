"""Naming rules of every exported metric, the gateway middleware, and the /metrics endpoints."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.observability.exposition import metrics_asgi_app, serve_metrics
from services.observability.gateway_metrics import SUBMISSION_CODES, GatewayMetrics, MetricsMiddleware
from services.observability.linker_metrics import LinkerMetrics
from services.observability.region import RegionProgress
from tests.support.metrics import FORBIDDEN_LABELS
from tools.observability.catalogue import exported_series_names


def all_families() -> list:  # type: ignore[type-arg]
    gateway, linker = CollectorRegistry(), CollectorRegistry()
    GatewayMetrics(gateway)
    LinkerMetrics(linker)
    RegionProgress(linker, {})
    return [*gateway.collect(), *linker.collect()]


def test_names_units_and_labels_follow_the_conventions() -> None:
    families = all_families()
    assert len(families) >= 25
    for family in families:
        assert re.fullmatch(r"(regsosek|linkage)_[a-z0-9_]+", family.name), family.name
        assert "millisecond" not in family.name and not family.name.endswith("_ms"), family.name
        if family.type == "histogram" and ("duration" in family.name or "call" in family.name):
            assert family.name.endswith("_seconds"), family.name
        if family.type == "gauge":
            assert not family.name.endswith("_total"), family.name
        labels = {name for sample in family.samples for name in sample.labels}
        assert not labels & FORBIDDEN_LABELS, (family.name, labels)
        assert family.documentation, family.name


def test_counters_are_exposed_with_total() -> None:
    names = exported_series_names()
    assert "regsosek_gateway_requests_total" in names
    assert "linkage_decisions_total" in names
    assert "regsosek_event_age_seconds_bucket" in names
    assert "regsosek_region_members_expected" in names


def gateway_app(registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()
    app.add_middleware(MetricsMiddleware, metrics=GatewayMetrics(registry))
    app.mount("/metrics", metrics_asgi_app(registry))

    @app.post("/v1/submissions")
    async def submit(ok: bool = True) -> JSONResponse:
        return JSONResponse({}, status_code=202 if ok else 422)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


def test_gateway_middleware_counts_by_route_and_code() -> None:
    registry = CollectorRegistry()
    client = TestClient(gateway_app(registry), raise_server_exceptions=False)
    for _ in range(3):
        assert client.post("/v1/submissions", content=b"{}").status_code == 202
    assert client.post("/v1/submissions?ok=false", content=b"{}").status_code == 422
    assert client.get("/boom").status_code == 500
    assert client.get("/no/such/path/123").status_code == 404

    def count(route: str, code: str) -> float | None:
        return registry.get_sample_value("regsosek_gateway_requests_total", {"route": route, "code": code})

    assert count("/v1/submissions", "202") == 3
    assert count("/v1/submissions", "422") == 1
    assert count("/v1/submissions", "503") == 0  # pre-initialised
    assert count("other", "500") == 1
    assert count("other", "404") == 1
    assert registry.get_sample_value("regsosek_gateway_request_body_bytes_count") == 4
    body = client.get("/metrics/").text
    assert 'regsosek_gateway_requests_total{code="202",route="/v1/submissions"} 3.0' in body
    assert set(SUBMISSION_CODES) >= {"202", "401", "413", "422", "503"}


def test_linker_metrics_server_answers_on_a_free_port() -> None:
    registry = CollectorRegistry()
    LinkerMetrics(registry).decisions.labels(source="dukcapil", band="auto_link").inc(2)
    server = serve_metrics(registry, "127.0.0.1", 0)
    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
    finally:
        server.stop()
    assert 'linkage_decisions_total{band="auto_link",source="dukcapil"} 2.0' in text
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=1)
