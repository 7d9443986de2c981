"""Region progress: how far the enumeration of the regency is, per district (what a regency head asks).

Per district (Kemendagri 6-digit code; a bounded label: the districts of one regency, plus `unknown`):
families and members submitted versus expected from the Dukcapil master, members linked and waiting for
review. Link rates and totals are PromQL over these gauges (`linked / submitted`, `sum(...)`).

A family is counted once, with the members of its latest linked revision: a re-submission replaces the
family's previous counts. With a `RegionStore` the per-family counts are kept on disk and reloaded at
start-up, so a restarted linker still shows the whole enumeration. Families live on one Kafka partition,
so linker instances count disjoint families and a dashboard sums the submitted/linked gauges over
instances (the expected ones are identical).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from services.observability.region_store import RegionStore

#: Label value for families whose district is not in the master (keeps the label set bounded).
UNKNOWN_DISTRICT = "unknown"


@dataclass(frozen=True)
class DistrictTarget:
    """What the master says a district should yield: living residents' family cards and persons."""

    families: int
    members: int


@dataclass(frozen=True)
class _FamilyCount:
    district: str
    members: int
    linked: int
    review: int


class RegionProgress:
    """Gauges of submitted/expected/linked per district, updated as families are linked (thread-safe)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        targets: Mapping[str, DistrictTarget],
        bps_districts: Mapping[str, str] | None = None,
        store: RegionStore | None = None,
    ) -> None:
        self._targets = dict(targets)
        self._bps = dict(bps_districts or {})
        self._families: dict[str, _FamilyCount] = {}
        self._review_total = 0
        self._store = store
        self._lock = threading.Lock()

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["district"], registry=registry)

        self.families_expected = gauge("regsosek_region_families_expected", "Family cards in the master.")
        self.members_expected = gauge("regsosek_region_members_expected", "Living residents in the master.")
        self.families_submitted = gauge("regsosek_region_families_submitted", "Distinct families linked.")
        self.members_submitted = gauge("regsosek_region_members_submitted", "Members of linked families.")
        self.members_linked = gauge("regsosek_region_members_linked", "Members auto-linked to the master.")
        self.members_review = gauge("regsosek_region_members_review", "Members waiting for clerical review.")
        # Per district: the submitted/linked/review children, resolved once (label look-ups are not free).
        self._children: dict[str, tuple[Gauge, Gauge, Gauge, Gauge]] = {}
        for district in (*sorted(self._targets), UNKNOWN_DISTRICT):
            target = self._targets.get(district, DistrictTarget(0, 0))
            self.families_expected.labels(district=district).set(target.families)
            self.members_expected.labels(district=district).set(target.members)
            children = tuple(
                g.labels(district=district)
                for g in (self.families_submitted, self.members_submitted, self.members_linked, self.members_review)
            )
            self._children[district] = children  # type: ignore[assignment]
        if store is not None:  # what was counted before a restart
            self._apply({key: _FamilyCount(self.district_of(key), m, ln, r) for key, m, ln, r in store.load()})

    def district_of(self, family_key: str) -> str:
        """The Kemendagri district of a 22-digit family key (its first 7 digits are the BPS district)."""
        district = self._bps.get(family_key[:7], "")
        return district if district in self._targets else UNKNOWN_DISTRICT

    def family_linked(self, family_key: str, bands: Sequence[str]) -> None:
        """Count one family's latest revision: `bands` holds one Dukcapil band per member."""
        self.families_linked({family_key: bands})

    def families_linked(self, families: Mapping[str, Sequence[str]]) -> None:
        """Count the latest revisions of several families (family key -> one band per member)."""
        counts = {
            key: _FamilyCount(
                self.district_of(key),
                len(bands),
                sum(b == "auto_link" for b in bands),
                sum(b == "review" for b in bands),
            )
            for key, bands in families.items()
        }
        if self._store is not None:
            self._store.save((key, c.members, c.linked, c.review) for key, c in counts.items())
        self._apply(counts)

    def review_backlog(self) -> int:
        """Members of current revisions in the review band, over all districts."""
        with self._lock:
            return self._review_total

    def _apply(self, counts: Mapping[str, _FamilyCount]) -> None:
        with self._lock:
            for key, new in counts.items():
                old = self._families.get(key)
                self._families[key] = new
                if old is not None:
                    self._add(old, -1)
                self._add(new, +1)

    def _add(self, count: _FamilyCount, sign: int) -> None:
        self._review_total += sign * count.review
        families, members, linked, review = self._children[count.district]
        families.inc(sign)
        members.inc(sign * count.members)
        linked.inc(sign * count.linked)
        review.inc(sign * count.review)


def targets_from_world(world_dir: Path) -> tuple[dict[str, DistrictTarget], dict[str, str]]:
    """District targets from a world's population.parquet, and BPS -> Kemendagri district codes.

    Expected are the living residents still in the regency, and their distinct family cards.
    """
    import pyarrow.parquet as pq

    rows = pq.read_table(
        world_dir / "population.parquet", columns=["kk_number", "district_code", "status", "moved_out"]
    ).to_pylist()
    members: dict[str, int] = {}
    cards: dict[str, set[str]] = {}
    for row in rows:
        if row["status"] != "alive" or row["moved_out"]:
            continue
        district = row["district_code"]
        members[district] = members.get(district, 0) + 1
        cards.setdefault(district, set()).add(row["kk_number"])
    targets = {d: DistrictTarget(len(cards[d]), members[d]) for d in sorted(members)}
    bps: dict[str, str] = {}
    crosswalk = world_dir / "crosswalk.parquet"
    if crosswalk.is_file():
        table = pq.read_table(crosswalk, columns=["level", "bps_code", "kemendagri_code"]).to_pylist()
        bps = {r["bps_code"]: r["kemendagri_code"] for r in table if r["level"] == "district"}
    return targets, bps
