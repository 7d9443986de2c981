"""What the engine returns: a `LinkDecision` per record, with its band and explanation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from linkage.engine.errors import EngineError


class Band(StrEnum):
    """What to do with a link: accept it, send it to a clerk, or treat the record as unmatched."""

    AUTO_LINK = "auto_link"
    REVIEW = "review"
    NO_MATCH = "no_match"


@dataclass(frozen=True, slots=True)
class BandThresholds:
    """Match-probability thresholds of the bands (from the model artefact's metadata)."""

    auto_link: float
    review: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.auto_link <= 1.0:
            raise EngineError(f"band thresholds need 0 <= review <= auto_link <= 1, got {self}")

    def band(self, match_probability: float | None) -> Band:
        """Band of a best candidate's probability (None: no candidate at all)."""
        if match_probability is None:
            return Band.NO_MATCH
        if match_probability >= self.auto_link:
            return Band.AUTO_LINK
        if match_probability >= self.review:
            return Band.REVIEW
        return Band.NO_MATCH

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> BandThresholds:
        """Read `{"thresholds": {"auto_link": p, "review": p}}` (or the same keys at the top level)."""
        raw = metadata.get("thresholds", metadata)
        try:
            return cls(auto_link=float(raw["auto_link"]), review=float(raw["review"]))
        except (KeyError, TypeError, ValueError) as e:
            raise EngineError(
                "model metadata has no band thresholds: expected thresholds.auto_link and thresholds.review"
            ) from e


@dataclass(frozen=True, slots=True)
class ComparisonContribution:
    """One comparison's part of a pair's match weight."""

    comparison: str
    level: str
    match_weight: float  # level weight plus the term-frequency adjustment
    tf_adjustment: float

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # positional pickling: decisions cross process boundaries in bulk (forked workers)
        return (ComparisonContribution, (self.comparison, self.level, self.match_weight, self.tf_adjustment))


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a pair scored what it did: prior + sum of contributions = total match weight."""

    prior_match_weight: float
    contributions: tuple[ComparisonContribution, ...]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Explanation, (self.prior_match_weight, self.contributions))


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """The engine's answer for one record."""

    record_id: str
    master_record_id: str | None
    match_probability: float | None
    match_weight: float | None
    runner_up_match_weight: float | None
    candidate_count: int
    band: Band
    explanation: Explanation | None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (
            LinkDecision,
            (
                self.record_id,
                self.master_record_id,
                self.match_probability,
                self.match_weight,
                self.runner_up_match_weight,
                self.candidate_count,
                self.band,
                self.explanation,
            ),
        )


def match_probability(match_weight: float) -> float:
    """Splink's numerically stable `1 / (1 + 2^-w)`."""
    if match_weight >= 0:
        return 1.0 / (1.0 + math.pow(2.0, -match_weight))
    bf = math.pow(2.0, match_weight)
    return bf / (1.0 + bf)
