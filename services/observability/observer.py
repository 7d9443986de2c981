"""Prometheus implementations of the core's `LinkageObserver`, and a port wrapper that feeds them.

`PrometheusLinkageObserver` turns the core's hooks into metric updates. `ObservedMemberLinker` wraps the
linker's `MemberLinker` port: it hands the observer to the core engine when the port runs one (the engine
then reports each call and each Dukcapil decision with its candidate pairs), otherwise it times the calls
and reports the Dukcapil decisions itself; it always reports DTKS and BPJS hits, members without NIK and
each family's counts to region progress. Only bands, counts
and probabilities cross this boundary; the member keys used for grouping never become labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import groupby

from linkage.observer import BANDS, SOURCES, Band, LinkageObserver, Source
from services.linker.port import MemberLink, MemberLinker, MemberQuery
from services.observability.linker_metrics import LinkerMetrics
from services.observability.region import RegionProgress


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


class ObservedMemberLinker:
    """A `MemberLinker` that reports every call to an observer (and region progress) before returning."""

    def __init__(
        self,
        inner: MemberLinker,
        observer: LinkageObserver,
        *,
        metrics: LinkerMetrics | None = None,
        region: RegionProgress | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._inner = inner
        self._observer = observer
        self._metrics = metrics
        self._region = region
        self._clock = clock
        # A linker running the core engine hands the observer to it: the engine then reports calls and
        # Dukcapil decisions itself (with candidate counts), and this wrapper must not count them again.
        attach = getattr(inner, "attach_observer", None)
        self.core_reports = callable(attach)
        if attach is not None and callable(attach):
            attach(observer)

    @property
    def model_version(self) -> str:
        """The wrapped linker's model version."""
        return self._inner.model_version

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        """Link through the wrapped linker, then report the call, each decision and each family."""
        started = self._clock()
        links = self._inner.link(members)
        if not self.core_reports:
            self._observer.batch_linked(len(members), self._clock() - started)
        for query, link in zip(members, links, strict=False):
            if not self.core_reports:  # candidate pairs are known only inside the engine
                self._observer.record_decided("dukcapil", link.band, link.probability, None)
            self._observer.record_decided("dtks", "auto_link" if link.dtks_id else "no_match", None, None)
            self._observer.record_decided("bpjs", "auto_link" if link.bpjs_id else "no_match", None, None)
            if self._metrics is not None and not query.nik:
                self._metrics.members_without_nik.inc()
        if self._region is not None:
            pairs = zip(members, links, strict=False)
            families = {
                family_key: [_linked_band(link) for _, link in group]
                for family_key, group in groupby(pairs, key=lambda pair: pair[0].family_key)
            }
            self._region.families_linked(families)
            if self._metrics is not None:
                self._metrics.review_backlog.set(self._region.review_backlog())
        return links


def _linked_band(link: MemberLink) -> str:
    # A band without a candidate NIK is not a link (same rule as the linker's outputs).
    return link.band if link.master_nik else "no_match"
