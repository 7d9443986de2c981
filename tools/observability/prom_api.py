"""A small client of Prometheus's HTTP API (instant and range queries, readiness, targets, rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class PrometheusQueryError(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, timeout); the message is Prometheus's."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusApi:
    """Queries one Prometheus server, e.g. `PrometheusApi("http://127.0.0.1:9090")`."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout_s

    def ready(self) -> bool:
        """True when the server answers /-/ready with 200."""
        try:
            return httpx.get(f"{self.base_url}/-/ready", timeout=self._timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[Sample]:
        """Evaluate `expr` now; one Sample per series (a scalar result becomes one unlabelled sample)."""
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of `expr`, None when it has no series; an error when it has several."""
        samples = self.query(expr)
        if len(samples) > 1:
            raise PrometheusQueryError(f"{expr!r} returned {len(samples)} series, expected one")
        return samples[0].value if samples else None

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        """Evaluate `expr` at every `step_s` between `start` and `end` (unix seconds)."""
        data = self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step_s})
        return [Series(dict(r["metric"]), [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health."""
        return list(self._get("/api/v1/targets", {})["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule of every group."""
        return [rule for group in self._get("/api/v1/rules", {})["groups"] for rule in group["rules"]]

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = httpx.get(f"{self.base_url}{path}", params=params, timeout=self._timeout)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {body.get('error', response.text)}")
        return body["data"]
