"""The model spec chosen from the columns that are there: comparisons, blocking, EM passes, prior rules.

`linkage.comparisons` declares every comparison and blocking rule a source's model MAY use. A file may
not fill them all (a sectoral register without NIKs, a hospital list with name and birth date only), and
Splink fails hard when a training rule finds no pairs. `choose_spec` keeps only what both inputs can
support: a prepared column is *usable* when its fill rate (share of non-NULL values) is at least
`FILL_FLOOR` in the master AND in the records.

- A comparison is kept when the columns of its null level (the first level, which says when the
  comparison is unknown) are usable; its other columns are refinements of the same value.
- A blocking rule is kept when all its columns are usable. When NIK blocking is unusable, or the
  regions are (`district_code` filled under `REGION_FLOOR` in either input: a file without village
  codes, no crosswalk, or one that covers part of the villages), the
  `FALLBACK_BLOCKING` rules are added: without NIK, name-and-date evidence needs wider candidate sets,
  and the regular rules that are bounded by a village or district reach nothing without regions.
  A fallback rule whose equal-value pairs between the two inputs exceed `FALLBACK_PAIR_BUDGET` per
  record (counted by `spec_for_tables`) is left out: it would mostly add non-matches and cost.
- EM passes are chosen greedily from `EM_CANDIDATES`: the next pass is the first usable rule that leaves
  some not-yet-trained comparison free (a comparison reading a column of the rule learns nothing there)
  and at least `MIN_ACTIVE` comparisons active; only when no such rule exists is a pass with one active
  comparison accepted (e.g. name + birth date only). Later passes train only the newly freed
  comparisons, the earlier ones' m fixed.
- Prior rules: the usable rules of `PRIOR_CANDIDATES` (they only seed the prior, which training then
  re-estimates from the predictions, see `linkage.model.training`).
- Too little to link -> `NotEnoughToLink`: fewer than `MIN_COMPARISONS` comparisons, no blocking rule, or
  no EM pass able to train some comparison.

Everything here reads `Comparison.columns()` and the null level generically, so comparisons added to
`linkage.comparisons` later are handled without changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from linkage.comparisons import (
    BLOCKING_RULES,
    COMPARISONS,
    UNIQUE_ID,
    Comparison,
    NullLevel,
    Source,
    render_blocking,
    render_comparison,
)

# A column filled in less than a fifth of either input cannot carry a comparison: its m/u would be
# learnt from a handful of pairs and its blocking rule would find almost no candidates.
FILL_FLOOR = 0.2
MIN_COMPARISONS = 2
# Without NIK: a record whose birth date is mistyped is found by its name key + birth year (the regular
# rules need the district with it, which a file without regions lacks), one whose birth year is wrong by
# its exact name, one whose name key changed by its birth date or given name + year (plain Splink's
# `full_name` / `birth_date` rules, and more).
# The address, the name's token set, the surname(s) and the given name alone find the record whose name
# AND birth date were both mistyped; a rule wider than `FALLBACK_PAIR_BUDGET` pairs per record (a common
# given name in a big master, a kampung without RT) is left out.
FALLBACK_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("name_key", "birth_year"),
    ("birth_date",),
    ("given_name_key", "birth_year"),
    ("name_norm",),
    ("name_sorted",),
    ("addr_place",),
    ("other_names",),
    ("given_name",),
)
FALLBACK_PAIR_BUDGET = 20
# The regular rules are bounded by a village or district: a record without one is reached only by NIK,
# name key + full birth date and KK. When more than a tenth of either input has no district, the
# fallback rules (within the pair budget) are added for them.
REGION_FLOOR = 0.9
EM_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("nik",),
    ("name_key", "birth_year"),
    ("birth_date",),
    ("name_norm",),
)
# EM prefers passes with at least this many comparisons active (not reading the rule's columns): with
# one, the share of matches among the pass's pairs and that comparison's m are not both identifiable,
# and free EM calls every disagreement a non-match. Such a pass runs with that share fixed (training).
MIN_ACTIVE = 2
PRIOR_CANDIDATES: tuple[tuple[str, ...], ...] = (("nik", "birth_date"), ("name_norm", "birth_date"))
# Used only when no rule above is usable (a looser rule overstates the prior more).
PRIOR_FALLBACKS: tuple[tuple[str, ...], ...] = (("nik",), ("name_norm",))

Rule = tuple[str, ...]


class NotEnoughToLink(ValueError):
    """The inputs do not fill enough columns to train a model (the message names what is missing)."""


@dataclass(frozen=True)
class ModelSpec:
    """The comparisons, blocking rules, EM passes and prior rules one model uses."""

    source: str
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[Rule, ...]
    em_rules: tuple[Rule, ...]
    prior_rules: tuple[Rule, ...]
    dropped: dict[str, str] = field(default_factory=dict)  # comparison name -> why it was left out
    floor: float = FILL_FLOOR

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the chosen comparisons."""
        return tuple(c.name for c in self.comparisons)

    def to_metadata(self) -> dict[str, Any]:
        """The choice as stored in the model artefact's metadata."""
        return {
            "source": self.source,
            "fill_floor": self.floor,
            "comparisons": list(self.names),
            "blocking_rules": [list(r) for r in self.blocking_rules],
            "em_rules": [list(r) for r in self.em_rules],
            "prior_rules": [list(r) for r in self.prior_rules],
            "dropped": dict(self.dropped),
        }

    def describe(self) -> list[str]:
        """Human-readable lines (printed by the CLI)."""
        plus = "+".join
        lines = [
            f"comparisons: {', '.join(self.names)}",
            f"blocking: {'; '.join(plus(r) for r in self.blocking_rules)}",
            f"EM passes: {'; '.join(plus(r) for r in self.em_rules)}",
            f"prior seeded by: {'; '.join(plus(r) for r in self.prior_rules) or 'none'}",
        ]
        lines += [f"left out: {name} ({why})" for name, why in self.dropped.items()]
        return lines

    def render_settings(self) -> Any:
        """Splink `SettingsCreator` of this spec (link_only)."""
        from splink import SettingsCreator

        return SettingsCreator(
            link_type="link_only",
            unique_id_column_name=UNIQUE_ID,
            comparisons=[render_comparison(c) for c in self.comparisons],
            blocking_rules_to_generate_predictions=render_blocking(self.blocking_rules),
            retain_intermediate_calculation_columns=False,
            retain_matching_columns=False,
        )


def fill_rates(table: pa.Table) -> dict[str, float]:
    """Share of non-NULL values of every column (0.0 for an empty table)."""
    n = table.num_rows
    return {c: (1.0 - table.column(c).null_count / n) if n else 0.0 for c in table.column_names}


def key_columns(comparison: Comparison) -> tuple[str, ...]:
    """The columns that decide whether a comparison is known: its null level's, else all it reads."""
    first = comparison.levels[0]
    return first.columns if isinstance(first, NullLevel) else comparison.columns()


def _usable(column: str, master: Mapping[str, float], records: Mapping[str, float], floor: float) -> bool:
    return master.get(column, 0.0) >= floor and records.get(column, 0.0) >= floor


def _why(columns: Sequence[str], master: Mapping[str, float], records: Mapping[str, float], floor: float) -> str:
    parts = []
    for c in columns:
        m, r = master.get(c, 0.0), records.get(c, 0.0)
        if m < floor or r < floor:
            parts.append(f"{c} filled {m:.0%} in the master, {r:.0%} in the records")
    return "; ".join(parts) + f" (floor {floor:.0%})"


def active_comparisons(comparisons: Sequence[Comparison], rule: Sequence[str]) -> list[Comparison]:
    """Comparisons an EM pass blocked on `rule` can use (Splink leaves out those reading its columns)."""
    return [c for c in comparisons if not set(rule) & set(c.columns())]


def _em_passes(comparisons: Sequence[Comparison], usable: set[str]) -> tuple[list[Rule], set[str]]:
    trained: set[str] = set()
    passes: list[Rule] = []
    for min_active in (MIN_ACTIVE, 1):
        for rule in EM_CANDIDATES:
            if not set(rule) <= usable or rule in passes:
                continue
            active = {c.name for c in active_comparisons(comparisons, rule)}
            if active - trained and len(active) >= min_active:
                passes.append(rule)
                trained |= active
    return passes, {c.name for c in comparisons} - trained


def choose_spec(
    source: Source,
    master_fill: Mapping[str, float],
    records_fill: Mapping[str, float],
    floor: float = FILL_FLOOR,
    too_wide: frozenset[Rule] = frozenset(),
) -> ModelSpec:
    """Choose `source`'s model spec from the prepared columns' fill rates of both inputs (`too_wide`:
    fallback blocking rules over the pair budget)."""
    usable = {c for c in set(master_fill) | set(records_fill) if _usable(c, master_fill, records_fill, floor)}
    kept: list[Comparison] = []
    dropped: dict[str, str] = {}
    for comparison in COMPARISONS[source]:
        keys = key_columns(comparison)
        if set(keys) <= usable:
            kept.append(comparison)
        else:
            dropped[comparison.name] = _why(keys, master_fill, records_fill, floor)
    if len(kept) < MIN_COMPARISONS:
        have = ", ".join(c.name for c in kept) or "nothing"
        missing = ", ".join(dropped)
        raise NotEnoughToLink(
            f"too little to link: only {have} is filled in both files (at least {MIN_COMPARISONS} of "
            f"{', '.join(c.name for c in COMPARISONS[source])} needed; missing or under {floor:.0%} filled: {missing})"
        )
    candidates = list(BLOCKING_RULES[source])
    if "nik" not in usable or not _usable("district_code", master_fill, records_fill, REGION_FLOOR):
        candidates += [r for r in FALLBACK_BLOCKING if r not in candidates and r not in too_wide]
    blocking = tuple(r for r in candidates if set(r) <= usable)
    if not blocking:
        raise NotEnoughToLink(
            "too little to link: no blocking rule can be used (each needs all of: "
            + "; ".join("+".join(r) for r in candidates)
            + f", filled {floor:.0%} or more in both files)"
        )
    em, untrained = _em_passes(kept, usable)
    if not em or untrained:
        raise NotEnoughToLink(
            f"too little to link: no training pass can learn {', '.join(sorted(untrained)) or 'any comparison'} "
            "(needs NIK, or name and birth date, filled in both files)"
        )
    prior = tuple(r for r in PRIOR_CANDIDATES if set(r) <= usable)
    prior = prior or tuple(r for r in PRIOR_FALLBACKS if set(r) <= usable)[:1] or blocking[:1]
    return ModelSpec(source, tuple(kept), blocking, tuple(em), prior, dropped, floor)


def spec_for_tables(source: Source, master: pa.Table, records: pa.Table, floor: float = FILL_FLOOR) -> ModelSpec:
    """`choose_spec` on two prepared tables (fallback blocking rules over the pair budget left out)."""
    budget = FALLBACK_PAIR_BUDGET * max(records.num_rows, 1)
    too_wide = frozenset(r for r in FALLBACK_BLOCKING if blocked_pairs(master, records, r) > budget)
    return choose_spec(source, fill_rates(master), fill_rates(records), floor, too_wide)


def blocked_pairs(master: pa.Table, records: pa.Table, rule: Rule) -> int:
    """Number of (record, master) pairs equal and non-NULL on all of `rule`'s columns (0 when a column
    is missing)."""
    columns = list(rule)
    if not set(columns) <= set(master.column_names) & set(records.column_names):
        return 0

    def counts(table: pa.Table) -> pa.Table:
        keys = table.select(columns).drop_null()
        return keys.group_by(columns).aggregate([([], "count_all")])

    joined = counts(master).join(counts(records), columns, join_type="inner", right_suffix="_r")
    if joined.num_rows == 0:
        return 0
    product = pc.multiply(joined.column("count_all").cast(pa.int64()), joined.column("count_all_r").cast(pa.int64()))
    return int(pc.sum(product).as_py() or 0)


def full_spec(source: Source) -> ModelSpec:
    """Every comparison and rule of `source` (models trained before the chooser existed used these)."""
    comparisons = COMPARISONS[source]
    usable = {c for comp in comparisons for c in comp.columns()}
    em, _ = _em_passes(comparisons, usable)
    return ModelSpec(source, comparisons, BLOCKING_RULES[source], tuple(em), PRIOR_CANDIDATES[:2])


def spec_from_metadata(meta: Mapping[str, Any]) -> ModelSpec:
    """The spec recorded in an artefact's metadata (`full_spec` for artefacts without one)."""
    source = str(meta.get("source", "members"))
    raw = meta.get("spec")
    if source not in COMPARISONS:
        raise ValueError(f"unknown source {source!r} in the model metadata")
    if not raw:
        return full_spec(source)
    by_name = {c.name: c for c in COMPARISONS[source]}
    unknown = [n for n in raw["comparisons"] if n not in by_name]
    if unknown:
        raise ValueError(f"the model uses comparisons this code does not know: {', '.join(unknown)}")
    return ModelSpec(
        source,
        tuple(by_name[n] for n in raw["comparisons"]),
        tuple(tuple(r) for r in raw["blocking_rules"]),
        tuple(tuple(r) for r in raw["em_rules"]),
        tuple(tuple(r) for r in raw["prior_rules"]),
        dict(raw.get("dropped", {})),
        float(raw.get("fill_floor", FILL_FLOOR)),
    )
