"""Build and model information as constant gauges (value 1, the facts in labels; one series each)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

from prometheus_client import CollectorRegistry, Gauge


def package_version() -> str:
    """The installed version of this project ("unknown" when run from a bare source tree)."""
    try:
        return dist_version("regsosek-linkage")
    except PackageNotFoundError:
        return "unknown"


def register_build_info(registry: CollectorRegistry, service: str) -> Gauge:
    """`regsosek_build_info{service,version,python}` = 1 on `registry`."""
    info = Gauge(
        "regsosek_build_info",
        "Build of the running service: its name, the project version and the Python version (always 1).",
        ["service", "version", "python"],
        registry=registry,
    )
    info.labels(service=service, version=package_version(), python=platform.python_version()).set(1)
    return info
