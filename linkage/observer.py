"""The observer protocol: how the linkage core reports what it does, without knowing who listens.

The core (engine, batch linkage) calls these hooks; the services implement them, e.g. with Prometheus
metrics (`services.observability`). Nothing here imports a metrics library, so the core stays pure and
its tests run with `NO_OBSERVER` or a recording fake.

Every hook carries counts, durations, bands and probabilities only: never a NIK, KK number, name or
record id, so an implementation cannot leak personal data into labels or logs by accident.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

#: The three decision bands of the Fellegi-Sunter thresholds.
Band = Literal["auto_link", "review", "no_match"]
BANDS: Final[tuple[Band, ...]] = ("auto_link", "review", "no_match")

#: The databases a survey member is linked to: the Dukcapil population master and the sectoral ones.
Source = Literal["dukcapil", "dtks", "bpjs"]
SOURCES: Final[tuple[Source, ...]] = ("dukcapil", "dtks", "bpjs")


class LinkageObserver(Protocol):
    """Hooks the linkage core calls; implementations must be cheap and must not raise."""

    def master_loaded(self, records: int, as_of_epoch_s: float) -> None:
        """The population master now holds `records` persons, current as of `as_of_epoch_s` (Unix time)."""

    def record_decided(self, source: Source, band: Band, probability: float | None, candidates: int | None) -> None:
        """One record was decided against `source`: its band, best match probability, candidate pairs.

        `probability` and `candidates` are None when the source or engine does not report them.
        """

    def batch_linked(self, records: int, seconds: float) -> None:
        """One engine call linked `records` records in `seconds` (wall clock)."""


class NoOpObserver:
    """The default observer: ignores every hook (the core never needs to check for None)."""

    def master_loaded(self, records: int, as_of_epoch_s: float) -> None:
        """Ignored."""

    def record_decided(self, source: Source, band: Band, probability: float | None, candidates: int | None) -> None:
        """Ignored."""

    def batch_linked(self, records: int, seconds: float) -> None:
        """Ignored."""


NO_OBSERVER: Final[LinkageObserver] = NoOpObserver()


class RecordingObserver:
    """A fake for tests of the core: keeps every call in order, as (hook name, arguments)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def master_loaded(self, records: int, as_of_epoch_s: float) -> None:
        """Recorded."""
        self.calls.append(("master_loaded", (records, as_of_epoch_s)))

    def record_decided(self, source: Source, band: Band, probability: float | None, candidates: int | None) -> None:
        """Recorded."""
        self.calls.append(("record_decided", (source, band, probability, candidates)))

    def batch_linked(self, records: int, seconds: float) -> None:
        """Recorded."""
        self.calls.append(("batch_linked", (records, seconds)))
