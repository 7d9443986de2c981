"""Labelled pairs (clerical review decisions, or reviewers simulated from a truth file): reading, scoring
links against them, and calibrating the band thresholds from them. Pure: tables in, numbers out.

A labels file (docs/review.md, "Labels") has one row per labelled pair: `record_id` (the survey record;
for survey members the member key `<22-digit family key>-<serial>`), `master_record_id` (the master's
NIK) and `label` (1 the same person, 0 not); `decision_id`, `task_id` and `reviewer_role` say where it
comes from and are not needed here.

Judging a member by its labels (a member's labels come from one task):
- the member has a pair labelled 1 (the reviewer accepted that candidate): its link is right when it is
  that master record, wrong when it is any other;
- the member has only pairs labelled 0 (new person, or every shown candidate wrong): its link is wrong
  when it is one of those records; a link to a record nobody judged is *unjudged* and not scored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

REQUIRED_COLUMNS: tuple[str, ...] = ("record_id", "master_record_id", "label")
AUTO = frozenset({"auto_link"})
AUTO_REVIEW = frozenset({"auto_link", "review"})
# Defaults of the threshold calibration (docs/review.md, "Labels").
TARGET_PRECISION = 0.99
TARGET_RECALL = 0.99
MIN_LABELLED = 30
# Bounds of a calibrated auto-link threshold: never below the middle, never so high nothing auto-links.
AUTO_LINK_BOUNDS = (0.5, 0.999999)
_SERIAL = re.compile(r"/(\d{1,2})$")


class LabelsInputError(ValueError):
    """A labels file that cannot be used (one line naming the problem)."""


@dataclass(frozen=True)
class MemberLabels:
    """What the labels say about one survey record."""

    positive: str | None  # the master record labelled 1, if any
    negatives: frozenset[str]

    def verdict(self, master_record_id: str | None) -> bool | None:
        """True: a link to this record is right; False: wrong; None: nobody judged it (or no link)."""
        if master_record_id is None:
            return None
        if self.positive is not None:
            return master_record_id == self.positive
        return False if master_record_id in self.negatives else None


def read_labels(table: pa.Table) -> dict[str, MemberLabels]:
    """The labels of each record (raises `LabelsInputError` for a file that is not a labels file)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise LabelsInputError(
            f"labels file has no column {missing[0]!r}; expected columns: {', '.join(REQUIRED_COLUMNS)}"
        )
    if table.num_rows == 0:
        raise LabelsInputError("labels file has no rows")
    positives: dict[str, str] = {}
    negatives: dict[str, set[str]] = {}
    for i, (rid, mid, label) in enumerate(
        zip(*(table.column(c).to_pylist() for c in REQUIRED_COLUMNS), strict=True), start=1
    ):
        if rid in (None, "") or mid in (None, ""):
            raise LabelsInputError(f"labels file row {i}: record_id and master_record_id must not be empty")
        if str(label) not in ("0", "1", "True", "False"):
            raise LabelsInputError(f"labels file row {i}: label must be 1 or 0, got {label!r}")
        rid, mid = str(rid), str(mid)
        if str(label) in ("1", "True"):
            if positives.setdefault(rid, mid) != mid:
                raise LabelsInputError(f"labels file row {i}: a second pair labelled 1 for the same record_id")
        else:
            negatives.setdefault(rid, set()).add(mid)
    return {
        rid: MemberLabels(positives.get(rid), frozenset(negatives.get(rid, set()) - {positives.get(rid)}))
        for rid in sorted(set(positives) | set(negatives))
    }


def label_keys(records: pa.Table) -> list[str]:
    """The key each row of a records (or links) table is labelled under.

    A `member_key` column wins; else a survey member with a `family_key` column and a record id ending
    in `/<serial>` (`regsosek link` and `linkage.records.member_records`) is keyed `<family key>-<serial>`;
    anything else by its `record_id`."""
    if "member_key" in records.column_names:
        return [str(k) for k in records.column("member_key").to_pylist()]
    ids = [str(r) for r in records.column("record_id").to_pylist()]
    if "family_key" not in records.column_names:
        return ids
    out = []
    for rid, family in zip(ids, records.column("family_key").to_pylist(), strict=True):
        match = _SERIAL.search(rid)
        out.append(f"{family}-{int(match.group(1)):02d}" if family and match else rid)
    return out


@dataclass(frozen=True)
class LabelScores:
    """Links judged against the labels at one acceptance level."""

    right: int  # linked to the record labelled 1
    wrong: int  # linked to a record labelled 0, or to another than the one labelled 1
    missed: int  # a record labelled 1 that is not linked to it
    positives: int  # records with a pair labelled 1

    @property
    def precision(self) -> float:
        judged = self.right + self.wrong
        return self.right / judged if judged else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.positives if self.positives else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class LabelEvaluation:
    """A links table against a labels file."""

    labelled_records: int  # records in the labels file
    used: int  # of them, found in the links
    unmatched: int  # not found in the links
    labelled_pairs_used: int
    unjudged: tuple[int, int]  # links (auto, auto+review) to a master record nobody judged
    auto: LabelScores
    auto_review: LabelScores


def evaluate_against_labels(links: pa.Table, labels: dict[str, MemberLabels]) -> LabelEvaluation:
    """Score `links` (record_id or member_key, master_record_id, band) against `labels`."""
    for column in ("master_record_id", "band"):
        if column not in links.column_names:
            raise LabelsInputError(f"links file has no column {column!r}")
    keys = label_keys(links)
    chosen: dict[str, tuple[str | None, str]] = {}
    for key, mid, band in zip(
        keys, links.column("master_record_id").to_pylist(), links.column("band").to_pylist(), strict=True
    ):
        if key in labels:
            chosen[key] = (str(mid) if mid else None, str(band))
    if not chosen:
        raise LabelsInputError(
            "the labels share no record with the links: label record ids are member keys "
            "(<22-digit family key>-<serial>); give links with a member_key column or --world"
        )
    levels = []
    unjudged = []
    for bands in (AUTO, AUTO_REVIEW):
        right = wrong = missed = positives = blind = 0
        for key, (mid, band) in chosen.items():
            member = labels[key]
            linked = mid if band in bands else None
            verdict = member.verdict(linked)
            positives += member.positive is not None
            right += verdict is True
            wrong += verdict is False
            missed += member.positive is not None and verdict is not True
            blind += linked is not None and verdict is None
        levels.append(LabelScores(right, wrong, missed, positives))
        unjudged.append(blind)
    return LabelEvaluation(
        labelled_records=len(labels),
        used=len(chosen),
        unmatched=len(labels) - len(chosen),
        labelled_pairs_used=sum((labels[k].positive is not None) + len(labels[k].negatives) for k in chosen),
        unjudged=(unjudged[0], unjudged[1]),
        auto=levels[0],
        auto_review=levels[1],
    )


def format_label_evaluation(ev: LabelEvaluation) -> str:
    """Plain-text report of `evaluate_against_labels`."""
    lines = [
        f"labelled records {ev.labelled_records}: used {ev.used}, not in the links {ev.unmatched} "
        f"({ev.labelled_pairs_used} labelled pairs used)",
        f"{'level':<14}{'precision':>10}{'recall':>9}{'F1':>9}{'right':>8}{'wrong':>8}{'missed':>8}{'unjudged':>10}",
    ]
    for name, s, blind in (("auto-link", ev.auto, ev.unjudged[0]), ("auto+review", ev.auto_review, ev.unjudged[1])):
        lines.append(
            f"{name:<14}{s.precision:>10.4f}{s.recall:>9.4f}{s.f1:>9.4f}{s.right:>8}{s.wrong:>8}{s.missed:>8}{blind:>10}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Calibration:
    """Thresholds calibrated from labels, and what they rest on."""

    thresholds: dict[str, float]
    judged: int  # labelled records whose best candidate the labels judge
    auto_link_precision: float | None  # labelled precision at the calibrated auto-link threshold
    review_recall: float | None  # share of right best candidates at or above the review threshold
    kept: tuple[str, ...]  # thresholds left as they were (too few labels, or no threshold meets the target)

    def to_metadata(self, target_precision: float, target_recall: float) -> dict[str, object]:
        return {
            "target_precision": target_precision,
            "target_recall": target_recall,
            "judged": self.judged,
            "auto_link_precision": self.auto_link_precision,
            "review_recall": self.review_recall,
            "kept": list(self.kept),
        }


def calibrate_thresholds(
    judged: Sequence[tuple[float, bool]],
    current: dict[str, float],
    *,
    target_precision: float = TARGET_PRECISION,
    target_recall: float = TARGET_RECALL,
    min_labelled: int = MIN_LABELLED,
) -> Calibration:
    """Band thresholds from the labelled records' best candidates (`(probability, right)` pairs).

    - auto_link: the lowest probability t (among the judged ones) at which the best candidates with
      probability >= t, at least `min_labelled` of them, have a labelled precision >= `target_precision`,
      within `AUTO_LINK_BOUNDS`;
    - review: the highest t at which the right best candidates with probability >= t are still at least
      `target_recall` of all right ones (the review band keeps that share of the labelled matches), and
      never above auto_link.
    Either is kept as it is with fewer than `min_labelled` judged records (right ones, for review), or
    when no t meets the target. Labels come from the review band, the hardest pairs, so the labelled
    precision above a threshold understates the precision over all the links above it."""
    thresholds = dict(current)
    kept: list[str] = []
    ordered = sorted(judged, key=lambda pr: -pr[0])
    auto_precision: float | None = None
    if len(ordered) >= min_labelled:
        right = 0
        best: tuple[float, float] | None = None
        for i, (prob, ok) in enumerate(ordered, start=1):
            right += ok
            last_of_tie = i == len(ordered) or ordered[i][0] != prob
            if last_of_tie and i >= min_labelled and right / i >= target_precision:
                best = (prob, right / i)
        if best is not None:
            low, high = AUTO_LINK_BOUNDS
            thresholds["auto_link"] = min(max(best[0], low), high)
            auto_precision = best[1]
        else:
            kept.append("auto_link")
    else:
        kept.append("auto_link")
    right_probs = sorted(p for p, ok in judged if ok)
    review_recall: float | None = None
    if len(right_probs) >= min_labelled:
        lost = math.floor((1 - target_recall) * len(right_probs) + 1e-9)
        t = right_probs[lost]
        thresholds["review"] = min(t, thresholds["auto_link"])
        review_recall = sum(p >= thresholds["review"] for p in right_probs) / len(right_probs)
    else:
        kept.append("review")
    return Calibration(thresholds, len(judged), auto_precision, review_recall, tuple(kept))


def uncertainty(probabilities: Sequence[float | None]) -> float:
    """How much a reviewer's answer on a task would tell the model: the entropy (bits) of the model's
    distribution over the answers, candidate 1..k or none of them (new person).

    Each candidate's pairwise probability p gives odds p / (1 - p); a record matches at most one
    candidate, so P(candidate i) = o_i / (1 + sum o) and P(none) = 1 / (1 + sum o). A single candidate at
    0.5, or two close candidates, give the most; one near-certain candidate gives nearly 0. Missing
    probabilities are left out; no candidate at all gives 0."""
    odds = []
    for p in probabilities:
        if p is None:
            continue
        q = min(max(float(p), 1e-12), 1 - 1e-12)
        odds.append(q / (1 - q))
    if not odds:
        return 0.0
    total = 1.0 + sum(odds)
    shares = [1.0 / total, *(o / total for o in odds)]
    return -sum(s * math.log2(s) for s in shares if s > 0)
