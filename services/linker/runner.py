"""Run the linker worker in the foreground (`regsosek serve linker`, `python -m services.linker`)."""

from __future__ import annotations

import logging

from services.linker.settings import LinkerSettings


def run_worker(settings: LinkerSettings, *, loglevel: str = "info") -> None:
    """Build the engine and the app, then run a faust worker until SIGTERM/SIGINT. Does not return."""
    import faust

    from services.linker.app import build_app
    from services.linker.engine_adapter import load_member_linker, load_village_crosswalk

    linker = load_member_linker(settings)
    recorder = None
    if settings.metrics_port is not None:  # Prometheus metrics (services.observability)
        from services.observability.linker_wiring import serve_linker_metrics

        linker, recorder = serve_linker_metrics(settings, linker)
    crosswalk = load_village_crosswalk(settings)
    app, _ = build_app(settings, linker=linker, village_crosswalk=crosswalk, recorder=recorder)
    logging.getLogger("regsosek.linker").setLevel(loglevel.upper())
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
