"""The review app's metric families (bounded labels only: routes, codes, outcomes, roles, reasons, regencies).

Decisions carry the regency (the first 4 digits of the family key: BPS province + regency, 514 in the
country), not the district (7 digits, about 7,300 kecamatan): an app serving the whole country would
export at most 514 x 4 outcomes x 2 roles = 4,112 decision series, and in practice an app serves one
province or regency (tens of series). Per district, 7,300 x 8 = 58,400 series from one target would
outgrow what a dashboard can show or Prometheus should keep; the per-district counts are on the queue
page. The backlog figures are read from the state file at each scrape (`BacklogCollector`), so they are
current even when nobody looks at the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.observability import buckets
from services.observability.info import register_build_info
from services.review.store import AGE_BUCKETS, Backlog

#: Route templates counted under their own name; anything else is `other`.
ROUTES = ("/", "/login", "/logout", "/tasks", "/decide", "/undo", "/healthz", "/readyz", "/metrics")
#: Why a decision was refused (see services/review/app.py and store.py).
REFUSALS = (
    "csrf",
    "unauthenticated",
    "forbidden",
    "unknown_task",
    "stale",
    "closed",
    "decided",
    "invalid",
    "broker",
    "same_reviewer",
)
#: A second reviewer's accept / new person against the held decision (unknown: not held in this app's state).
AGREEMENT = ("agree", "disagree", "unknown")
_NO_BACKLOG = Backlog(0, {label: 0 for label, _ in AGE_BUCKETS}, None, 0)


class BacklogCollector(Collector):
    """Open tasks, by age bucket, the oldest one's age and the open second reviews, read at each scrape."""

    def __init__(self, backlog: Callable[[], tuple[Backlog, int]] | None) -> None:
        self._backlog = backlog  # -> (backlog, now in ms); None: zeros (the names, for the catalogue)

    def describe(self) -> Iterator[Metric]:
        return iter(self._families(_NO_BACKLOG, 0))

    def collect(self) -> Iterator[Metric]:
        backlog, now_ms = self._backlog() if self._backlog else (_NO_BACKLOG, 0)
        return iter(self._families(backlog, now_ms))

    @staticmethod
    def _families(backlog: Backlog, now_ms: int) -> list[Metric]:
        total = GaugeMetricFamily(
            "regsosek_review_open_tasks", "Open review tasks (all districts).", value=backlog.open
        )
        by_age = GaugeMetricFamily(
            "regsosek_review_open_tasks_by_age",
            "Open review tasks by age since the task's record time (0-1d, ..., 14d+).",
            labels=["age"],
        )
        for label, _ in AGE_BUCKETS:
            by_age.add_metric([label], backlog.by_age.get(label, 0))
        oldest = max(0.0, (now_ms - backlog.oldest_received_ms) / 1000) if backlog.oldest_received_ms else 0.0
        age = GaugeMetricFamily(
            "regsosek_review_oldest_open_task_age_seconds",
            "Age of the oldest open review task (0 when none is open).",
            value=oldest,
        )
        second = GaugeMetricFamily(
            "regsosek_review_open_second_reviews",
            "Open second-review tasks (a held decision waiting for a second reviewer).",
            value=backlog.second_reviews,
        )
        return [total, by_age, age, second]


class ReviewMetrics:
    """Every metric family the review app exports, on an injected registry."""

    def __init__(self, registry: CollectorRegistry, backlog: Callable[[], tuple[Backlog, int]] | None = None) -> None:
        r = registry
        self.registry = registry
        self.build_info = register_build_info(r, "review")
        self.requests = Counter(
            "regsosek_review_requests_total",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "regsosek_review_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=buckets.REQUEST_SECONDS,
            registry=r,
        )
        self.decisions = Counter(
            "regsosek_review_decisions_total",
            "Decisions produced (acknowledged by the broker), by regency (4 digits of the "
            "family key), outcome and reviewer role.",
            ["regency", "outcome", "role"],
            registry=r,
        )
        self.second_decisions = Counter(
            "regsosek_review_second_decisions_total",
            "Accept / new-person decisions on second-review tasks (acknowledged), by "
            "agreement with the held decision (agree, disagree, unknown).",
            ["result"],
            registry=r,
        )
        self.refused = Counter(
            "regsosek_review_decisions_refused_total",
            "Decisions refused before anything was produced, by reason.",
            ["reason"],
            registry=r,
        )
        self.ingested = Counter(
            "regsosek_review_ingested_records_total",
            "Records read into the review state, by kind (review, member, submission, rejected).",
            ["kind"],
            registry=r,
        )
        r.register(BacklogCollector(backlog))
        self.logins = Counter("regsosek_review_logins_total", "Login attempts, by result.", ["result"], registry=r)
        for result in AGREEMENT:
            self.second_decisions.labels(result=result)
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
