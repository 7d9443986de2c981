"""The gateway's metric families and the ASGI middleware that updates them.

Requests are counted by route template and status code (both bounded: the app's routes, HTTP codes);
the status codes the gateway answers by design are pre-initialised so `rate()` sees them from 0.
Unknown paths are counted under the route `other`, so a scanner cannot create new series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.observability import buckets
from services.observability.info import register_build_info

SUBMISSIONS_ROUTE = "/v1/submissions"
#: Routes counted under their own name; anything else is `other`.
KNOWN_ROUTES = (SUBMISSIONS_ROUTE, "/healthz", "/readyz", "/metrics")
#: What POST /v1/submissions answers by design (see services/gateway/app.py), plus 500.
SUBMISSION_CODES = ("202", "401", "413", "415", "422", "500", "503")


class GatewayMetrics:
    """Every metric family the gateway exports, on an injected registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.registry = registry
        self.build_info = register_build_info(r, "gateway")
        self.requests = Counter(
            "regsosek_gateway_requests_total",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "regsosek_gateway_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=buckets.REQUEST_SECONDS,
            registry=r,
        )
        self.body_bytes = Histogram(
            "regsosek_gateway_request_body_bytes",
            "Declared size of submission request bodies.",
            buckets=buckets.BODY_BYTES,
            registry=r,
        )
        # Field feedback the gateway serves (services/gateway/feedback.py): open items now, and transitions
        # seen on `field.feedback.v1` (the rebuild at start counts the items' current states once).
        self.feedback_open = Gauge(
            "regsosek_gateway_feedback_open_items",
            "Field feedback items open now, by kind.",
            ["kind"],
            registry=r,
        )
        self.feedback_items = Counter(
            "regsosek_gateway_feedback_items_total",
            "Field feedback items opened or closed, by kind.",
            ["kind", "transition"],
            registry=r,
        )
        for code in SUBMISSION_CODES:
            self.requests.labels(route=SUBMISSIONS_ROUTE, code=code)
        self.duration.labels(route=SUBMISSIONS_ROUTE)

    def observe(self, route: str, code: int, seconds: float, body_bytes: int | None = None) -> None:
        """Count one answered request."""
        self.requests.labels(route=route, code=str(code)).inc()
        self.duration.labels(route=route).observe(seconds)
        if body_bytes is not None and route == SUBMISSIONS_ROUTE:
            self.body_bytes.observe(body_bytes)


def route_of(path: str, routes: Iterable[str] = KNOWN_ROUTES) -> str:
    """The bounded route label of a request path."""
    return path if path in routes else "other"


class MetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and counts it with its final status code."""

    def __init__(self, app: Any, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}  # an exception before the response start is answered 500 by the server

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            length = _content_length(scope)
            route = route_of(scope.get("path", ""))
            self.metrics.observe(route, status["code"], time.perf_counter() - started, length)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
