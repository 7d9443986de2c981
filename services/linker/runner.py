"""Run the linker worker in the foreground (`regsosek serve linker`, `python -m services.linker`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from services.linker.settings import LinkerSettings
from services.shutdown import ShutdownDeadline

if TYPE_CHECKING:
    import faust

    from integration.port import MemberLinker
    from services.observability.exposition import MetricsServer


def build_worker_app(
    settings: LinkerSettings, *, linker: MemberLinker | None = None, master_records: int | None = None
) -> tuple[faust.App, MetricsServer | None]:
    """The engine, its metrics endpoint (with a metrics port) and the faust app, composed as run.

    The engine object is handed unwrapped to the app (the pipeline and the master updates): metrics
    observe it through its attached observer and the batch recorder. `linker`: an engine to use instead of
    the configured one (tests run the service with a fake); `master_records`: its master's size (metrics).
    """
    from services.linker.app import build_app
    from services.linker.engine_adapter import load_member_linker, load_village_crosswalk

    if linker is None:
        linker = load_member_linker(settings)
    recorder, server = None, None
    if settings.metrics_port is not None:  # Prometheus metrics (services.observability)
        from services.linker.metrics_wiring import serve_linker_metrics

        recorder, server = serve_linker_metrics(settings, linker, master_records=master_records)
    crosswalk = load_village_crosswalk(settings)
    app, _ = build_app(settings, linker=linker, village_crosswalk=crosswalk, recorder=recorder)
    return app, server


def run_worker(
    settings: LinkerSettings,
    *,
    loglevel: str = "info",
    linker: MemberLinker | None = None,
    master_records: int | None = None,
) -> None:
    """Build the engine and the app, then run a faust worker until SIGTERM/SIGINT. Does not return.

    `linker`: an engine to use instead of the configured one (tests run the service with a fake, through
    tests/support/fake_linker.py); `master_records`: its master's size (metrics).
    """
    import faust

    app, _ = build_worker_app(settings, linker=linker, master_records=master_records)
    logging.getLogger("regsosek.linker").setLevel(loglevel.upper())
    deadline = ShutdownDeadline(settings.shutdown_deadline_seconds)

    class LinkerWorker(faust.Worker):
        """faust's worker with the shutdown deadline armed when it crashes or starts stopping."""

        def _crash(self, reason: BaseException) -> None:
            # Called (on the event loop) for a crash anywhere in the app, before the stop begins.
            deadline.arm(f"a fatal {type(reason).__name__}")
            super()._crash(reason)

        async def stop(self) -> None:
            deadline.arm("a stop request")
            await super().stop()

    worker: Any = LinkerWorker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
