"""Run the linker worker in the foreground (`regsosek serve linker`, `python -m services.linker`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.linker.settings import LinkerSettings

if TYPE_CHECKING:
    import faust

    from services.observability.exposition import MetricsServer


def build_worker_app(settings: LinkerSettings) -> tuple[faust.App, MetricsServer | None]:
    """The engine, its metrics endpoint (with a metrics port) and the faust app, composed as run.

    The engine object is handed unwrapped to the app (the pipeline and the master updates): metrics
    observe it through its attached observer and the batch recorder.
    """
    from services.linker.app import build_app
    from services.linker.engine_adapter import load_member_linker, load_village_crosswalk

    linker = load_member_linker(settings)
    recorder, server = None, None
    if settings.metrics_port is not None:  # Prometheus metrics (services.observability)
        from services.observability.linker_wiring import serve_linker_metrics

        recorder, server = serve_linker_metrics(settings, linker)
    crosswalk = load_village_crosswalk(settings)
    app, _ = build_app(settings, linker=linker, village_crosswalk=crosswalk, recorder=recorder)
    return app, server


def run_worker(settings: LinkerSettings, *, loglevel: str = "info") -> None:
    """Build the engine and the app, then run a faust worker until SIGTERM/SIGINT. Does not return."""
    import faust

    app, _ = build_worker_app(settings)
    logging.getLogger("regsosek.linker").setLevel(loglevel.upper())
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
