"""Accuracy of a links file against the generator's truth file.

Definitions (per record present in both files; the truth's `true_nik` is the right master record, or
none when the person is not in the master):
- a record is *linked* at a level when its band is in that level's bands (auto: `auto_link`;
  auto+review: `auto_link` or `review`) and it has a master record;
- precision = correct links / links; recall = correct links / records that have a true master record;
  F1 is their harmonic mean;
- an *error* at the auto level is a wrong auto-link, or a record with a true master that was not
  auto-linked to it (a missed link); errors by noise type count each tag of the record's `noise`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

AUTO = frozenset({"auto_link"})
AUTO_REVIEW = frozenset({"auto_link", "review"})
BANDS = ("auto_link", "review", "no_match")


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 at one acceptance level."""

    links: int
    correct: int
    positives: int

    @property
    def precision(self) -> float:
        return self.correct / self.links if self.links else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.positives if self.positives else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Evaluation:
    """Everything `regsosek evaluate` prints."""

    records: int
    auto: Scores
    auto_review: Scores
    band_share: dict[str, float]
    no_nik_recall: float  # auto+review recall of records tagged `nik_missing`
    no_nik_records: int
    errors_by_noise: dict[str, tuple[int, int]] = field(default_factory=dict)  # tag -> (errors, records)


def _scores(rows: list[tuple[str | None, str | None, str]], bands: frozenset[str]) -> Scores:
    links = correct = positives = 0
    for predicted, truth, band in rows:
        linked = band in bands and predicted is not None
        positives += truth is not None
        links += linked
        correct += linked and predicted == truth
    return Scores(links, correct, positives)


def evaluate_links(links: pa.Table, truth: pa.Table) -> Evaluation:
    """Score `links` (record_id, master_record_id, band) against `truth` (record_id, true_nik, noise)."""
    truth_of: dict[str, tuple[str | None, str]] = {
        str(r): (n or None, noise or "")
        for r, n, noise in zip(
            truth.column("record_id").to_pylist(),
            truth.column("true_nik").to_pylist(),
            truth.column("noise").to_pylist(),
            strict=True,
        )
    }
    rows: list[tuple[str | None, str | None, str]] = []
    tags_of: list[list[str]] = []
    for rid, mid, band in zip(
        links.column("record_id").to_pylist(),
        links.column("master_record_id").to_pylist(),
        links.column("band").to_pylist(),
        strict=True,
    ):
        if str(rid) not in truth_of:
            continue
        true_nik, noise = truth_of[str(rid)]
        rows.append((mid or None, true_nik, str(band)))
        tags_of.append([t for t in noise.split("|") if t])
    bands = Counter(band for _, _, band in rows)
    n = len(rows)
    errors: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    no_nik = [row for row, tags in zip(rows, tags_of, strict=True) if "nik_missing" in tags]
    for (predicted, true_nik, band), tags in zip(rows, tags_of, strict=True):
        auto_linked = band in AUTO and predicted is not None
        wrong = (auto_linked and predicted != true_nik) or (
            true_nik is not None and not (auto_linked and predicted == true_nik)
        )
        for tag in tags or ["clean"]:
            seen[tag] += 1
            errors[tag] += wrong
    return Evaluation(
        records=n,
        auto=_scores(rows, AUTO),
        auto_review=_scores(rows, AUTO_REVIEW),
        band_share={b: (bands[b] / n if n else 0.0) for b in BANDS},
        no_nik_recall=_scores(no_nik, AUTO_REVIEW).recall,
        no_nik_records=len(no_nik),
        errors_by_noise={t: (errors[t], seen[t]) for t in sorted(seen)},
    )


def format_side_by_side(results: dict[str, Evaluation]) -> str:
    """A plain-text table with one column per evaluated model."""
    names = list(results)
    lines = [f"{'metric':<34}" + "".join(f"{n:>18}" for n in names)]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<34}" + "".join(f"{v:>18}" for v in values))

    ev = [results[n] for n in names]
    row("records", [str(e.records) for e in ev])
    for label, attr in (("auto-link", "auto"), ("auto+review", "auto_review")):
        row(f"{label} precision", [f"{getattr(e, attr).precision:.4f}" for e in ev])
        row(f"{label} recall", [f"{getattr(e, attr).recall:.4f}" for e in ev])
        row(f"{label} F1", [f"{getattr(e, attr).f1:.4f}" for e in ev])
    row("recall, no NIK (auto+review)", [f"{e.no_nik_recall:.4f}" for e in ev])
    for band in BANDS:
        row(f"share {band}", [f"{e.band_share[band]:.4f}" for e in ev])
    tags = sorted({t for e in ev for t in e.errors_by_noise})
    lines.append("errors (wrong or missed auto-links) by noise type:")
    for tag in tags:
        vals = []
        for e in ev:
            err, seen = e.errors_by_noise.get(tag, (0, 0))
            vals.append(f"{err}/{seen}")
        row(f"  {tag}", vals)
    return "\n".join(lines)


# Bin edges of the calibration table: fine near 1, where the auto-link threshold sits.
CALIBRATION_EDGES: tuple[float, ...] = (0.0, 0.1, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)


@dataclass(frozen=True)
class CalibrationBin:
    """Best candidates whose match probability falls in [low, high) (the last bin includes 1.0)."""

    low: float
    high: float
    count: int
    correct: int
    mean_probability: float

    @property
    def precision(self) -> float:
        """Observed share of these best candidates that are the true master record."""
        return self.correct / self.count if self.count else 0.0


def calibration_table(
    links: pa.Table, truth: pa.Table, edges: tuple[float, ...] = CALIBRATION_EDGES
) -> list[CalibrationBin]:
    """Predicted probability bins -> observed precision, over every record with a best candidate.

    A record counts in the bin of its best candidate's `match_probability` whatever its band; it is
    correct when that candidate is its true master record (a person not in the master is never correct).
    A well-calibrated model has each bin's precision close to its mean probability."""
    true_of = {
        str(r): (n or None)
        for r, n in zip(truth.column("record_id").to_pylist(), truth.column("true_nik").to_pylist(), strict=True)
    }
    counts = [0] * (len(edges) - 1)
    correct = [0] * (len(edges) - 1)
    sums = [0.0] * (len(edges) - 1)
    for rid, mid, prob in zip(
        links.column("record_id").to_pylist(),
        links.column("master_record_id").to_pylist(),
        links.column("match_probability").to_pylist(),
        strict=True,
    ):
        if str(rid) not in true_of or not mid or prob is None:
            continue
        p = float(prob)
        i = next((k for k in range(len(edges) - 1) if p < edges[k + 1]), len(edges) - 2)
        counts[i] += 1
        sums[i] += p
        correct[i] += str(mid) == true_of[str(rid)]
    return [
        CalibrationBin(edges[i], edges[i + 1], counts[i], correct[i], sums[i] / counts[i] if counts[i] else 0.0)
        for i in range(len(edges) - 1)
    ]


def format_calibration(bins: list[CalibrationBin], title: str = "") -> str:
    """The calibration table as plain text (empty bins are left out)."""
    head = f"calibration{f' ({title})' if title else ''}: predicted probability -> observed precision"
    lines = [head, f"{'bin':<20}{'records':>9}{'mean predicted':>16}{'observed':>10}"]
    for b in bins:
        if b.count:
            label = f"[{b.low:g}, {b.high:g}{']' if b.high >= 1.0 else ')'}"
            lines.append(f"{label:<20}{b.count:>9}{b.mean_probability:>16.4f}{b.precision:>10.4f}")
    return "\n".join(lines)


TRUTH_COLUMNS = ("record_id", "true_nik", "noise")
LINKS_COLUMNS = ("record_id", "master_record_id", "match_probability", "band")


class EvaluationInputError(ValueError):
    """The links or truth file cannot be evaluated (one line naming the problem)."""


def check_evaluation_inputs(links: pa.Table, truth: pa.Table) -> None:
    """Raise `EvaluationInputError` when a column is missing or the files share no record id."""
    for what, table, columns in (("links file", links, LINKS_COLUMNS), ("truth file", truth, TRUTH_COLUMNS)):
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise EvaluationInputError(f"{what} has no column {missing[0]!r}; expected columns: {', '.join(columns)}")
    link_ids = {str(v) for v in links.column("record_id").to_pylist()}
    if not link_ids & {str(v) for v in truth.column("record_id").to_pylist()}:
        raise EvaluationInputError(
            "the truth file shares no record_id with the links: is it the truth of the world the links come from?"
        )
