"""Serving a registry at /metrics: an ASGI app for the gateway, a small HTTP thread for the linker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app, start_http_server


def metrics_asgi_app(registry: CollectorRegistry) -> Callable[..., Any]:
    """An ASGI app answering the text exposition of `registry` (mounted at /metrics by the gateway)."""
    return make_asgi_app(registry=registry)


@dataclass
class MetricsServer:
    """A running /metrics endpoint in a daemon thread; `port` is the bound port (useful with port 0)."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop answering and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread (port 0 picks a free one)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(host, int(server.server_port), server, thread)
