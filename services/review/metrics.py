"""The review app's metric families (bounded labels only: routes, codes, outcomes, roles, reasons).

Open tasks are one gauge without a district label: districts are unbounded across the country, so the
per-district counts live on the queue page, not in Prometheus.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.review_decisions import ReviewerRole, ReviewOutcome
from services.observability import buckets
from services.observability.info import register_build_info

#: Route templates counted under their own name; anything else is `other`.
ROUTES = ("/", "/login", "/logout", "/tasks", "/decide", "/undo", "/healthz", "/readyz", "/metrics")
#: Why a decision was refused (see services/review/app.py and store.py).
REFUSALS = ("csrf", "unauthenticated", "forbidden", "unknown_task", "stale", "closed", "decided", "invalid",
            "broker")  # fmt: skip


class ReviewMetrics:
    """Every metric family the review app exports, on an injected registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.registry = registry
        self.build_info = register_build_info(r, "review")
        self.requests = Counter("regsosek_review_requests_total", "HTTP requests answered, by route and status code.",
                                ["route", "code"], registry=r)  # fmt: skip
        self.duration = Histogram("regsosek_review_request_duration_seconds", "Time to answer a request, by route.",
                                  ["route"], buckets=buckets.REQUEST_SECONDS, registry=r)  # fmt: skip
        self.decisions = Counter("regsosek_review_decisions_total",
                                 "Decisions produced (acknowledged by the broker), by outcome and reviewer role.",
                                 ["outcome", "role"], registry=r)  # fmt: skip
        self.refused = Counter("regsosek_review_decisions_refused_total",
                               "Decisions refused before anything was produced, by reason.", ["reason"], registry=r)
        self.ingested = Counter("regsosek_review_ingested_records_total",
                                "Records read into the review state, by kind (review, member, submission, rejected).",
                                ["kind"], registry=r)  # fmt: skip
        self.open_tasks = Gauge("regsosek_review_open_tasks", "Open review tasks (all districts).", registry=r)
        self.logins = Counter("regsosek_review_logins_total", "Login attempts, by result.", ["result"], registry=r)
        for outcome in ReviewOutcome:
            for role in ReviewerRole:
                self.decisions.labels(outcome=outcome.value, role=role.value)
        for reason in REFUSALS:
            self.refused.labels(reason=reason)
        for kind in ("review", "member", "submission", "rejected"):
            self.ingested.labels(kind=kind)
        for result in ("ok", "failed"):
            self.logins.labels(result=result)


def route_of(path: str) -> str:
    """The bounded route label of a request path (task pages share `/tasks`)."""
    if path.startswith("/tasks/"):
        return "/tasks"
    return path if path in ROUTES else "other"


class MetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and counts it with its final status code."""

    def __init__(self, app: Any, metrics: ReviewMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_of(scope.get("path", ""))
            self.metrics.requests.labels(route=route, code=str(status["code"])).inc()
            self.metrics.duration.labels(route=route).observe(time.perf_counter() - started)
