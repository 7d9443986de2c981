"""The Prometheus implementation of the core's `LinkageObserver`.

`PrometheusLinkageObserver` turns the hooks into metric updates. It is attached to the engine object
itself (`integration.port.ObservableLinker.attach_observer`), never wrapped around it: the engine
reports each call and each decision (Dukcapil with its candidate pairs, DTKS and BPJS), whether the
submissions pipeline or the master updates called it, and the object the updates modify is the one
the pipeline links with. Only bands, counts and probabilities cross this boundary.
"""

from __future__ import annotations

from linkage.observer import BANDS, SOURCES, Band, Source
from services.observability.linker_metrics import LinkerMetrics


class PrometheusLinkageObserver:
    """`LinkageObserver` over `LinkerMetrics`."""

    def __init__(self, metrics: LinkerMetrics) -> None:
        self._m = metrics
        # Label children resolved once: `labels()` per decision costs more than the increment itself.
        self._decisions = {(s, b): metrics.decisions.labels(source=s, band=b) for s in SOURCES for b in BANDS}

    def master_loaded(self, records: int, as_of_epoch_s: float) -> None:
        """Set the master size and the time it is current as of."""
        self._m.master_records.set(records)
        self._m.master_as_of.set(as_of_epoch_s)

    def record_decided(self, source: Source, band: Band, probability: float | None, candidates: int | None) -> None:
        """Count the decision; observe probability (Dukcapil only) and candidate pairs when known."""
        self._decisions[(source, band)].inc()
        if source == "dukcapil":
            if probability is not None:
                self._m.match_probability.observe(probability)
            if candidates is not None:
                self._m.candidate_pairs.observe(candidates)

    def batch_linked(self, records: int, seconds: float) -> None:
        """Observe one engine call's size and duration."""
        self._m.engine_batch.observe(records)
        self._m.engine_duration.observe(seconds)
