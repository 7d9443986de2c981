"""A relative's NIK: a record whose NIK is held in the master by someone its name and birth date deny.

Surveys often write another family member's NIK (the head's, a parent's, a child's). Fellegi-Sunter
then sees "NIK equal" - the strongest evidence in the model - and links the record to the NIK's holder
even though the names share nothing and the birth dates differ. The rule here reads the pair's levels:

    NIK at an equal level  AND  name at the ELSE level  AND  birth date at the ELSE or a null level

A record with such a pair is resolved WITHOUT its NIK: on every one of its candidate pairs the NIK
comparison's weight is taken out (as if the NIK were missing), so the right person - usually a member
of the holder's KK, found by the name, birth-date and KK blocking rules - can win on the rest of the
evidence; the pair with the holder is never auto-linked (at most review). More generally no pair whose
name and birth date both disagree is auto-linked: the household's address, KK and village together
identify a household, not a person (a newborn must not be linked to a dead grandmother of the same
house). On such a pair the household comparisons' positive weights (village, address, KK agreeing) are
taken out too: given that name and birth date disagree, agreeing on the household is what a family
member does, so those Bayes factors (learnt on matches against random pairs) would overstate the pair's probability (a
newborn not in the master scored 0.999 against its mother). Both the batch path (Splink predictions)
and the engine apply it, from the same model JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from linkage.engine.conditions import AllOf, Condition, Equal, Otherwise, parse_condition
from linkage.engine.decisions import match_probability
from linkage.engine.params import ModelParameters, read_model_parameters
from linkage.normalise.family import Candidate

NIK_COMPARISON = "nik"
NAME_COMPARISON = "name"
BIRTH_COMPARISON = "birth_date"
# Comparisons that identify a household, not a person: on a pair whose name and birth date disagree they
# say "same household" (a relative, a newborn, a lodger), so their weight is taken out of such a pair.
HOUSEHOLD_COMPARISONS = ("village", "address", "kk_number")
EXPLANATION = "NIK of a relative (its holder's name and birth date disagree): not used as evidence"
HOUSEHOLD_EXPLANATION = "same household, but name and birth date disagree: not evidence of the person"


def _names(model: Mapping[str, Any]) -> list[str]:
    return [str(c.get("output_column_name") or "") for c in model.get("comparisons", [])]


def _has_nik_equal(cond: Condition) -> bool:
    parts = cond.parts if isinstance(cond, AllOf) else (cond,)
    return any(isinstance(p, Equal) and p.left == p.right == "nik" for p in parts)


@dataclass(frozen=True)
class RelativeNikRule:
    """Which level positions of which comparisons make a pair a relative's NIK."""

    nik: int  # comparison index of NIK
    nik_equal: frozenset[int]  # positions (in the comparison's level list) where the NIKs are equal
    name: int
    name_contradicts: frozenset[int]
    birth: int | None
    birth_contradicts: frozenset[int]
    household: tuple[int, ...] = ()  # comparison indices of HOUSEHOLD_COMPARISONS in the model

    @classmethod
    def from_model(cls, model: Mapping[str, Any]) -> RelativeNikRule | None:
        """The rule for a Splink model dict; None when the model has no NIK or no name comparison."""
        levels = [
            [(bool(lv.get("is_null_level")), parse_condition(str(lv["sql_condition"]))) for lv in comp]
            for comp in (c["comparison_levels"] for c in model.get("comparisons", []))
        ]
        return cls._from_levels(_names(model), levels)

    @classmethod
    def from_parameters(cls, params: ModelParameters) -> RelativeNikRule | None:
        """The rule for the engine's model parameters (level positions = the engine's level indices)."""
        levels = [[(lv.is_null_level, lv.condition) for lv in c.levels] for c in params.comparisons]
        return cls._from_levels([c.name for c in params.comparisons], levels)

    @classmethod
    def _from_levels(cls, names: list[str], levels: list[list[tuple[bool, Condition]]]) -> RelativeNikRule | None:
        if NIK_COMPARISON not in names or NAME_COMPARISON not in names:
            return None
        nik, name = names.index(NIK_COMPARISON), names.index(NAME_COMPARISON)
        equal = frozenset(p for p, (null, cond) in enumerate(levels[nik]) if not null and _has_nik_equal(cond))
        contradicts = frozenset(p for p, (_, cond) in enumerate(levels[name]) if isinstance(cond, Otherwise))
        birth = names.index(BIRTH_COMPARISON) if BIRTH_COMPARISON in names else None
        birth_contradicts: frozenset[int] = frozenset()
        if birth is not None:
            birth_contradicts = frozenset(
                p for p, (null, cond) in enumerate(levels[birth]) if null or isinstance(cond, Otherwise)
            )
        if not equal or not contradicts:
            return None
        household = tuple(i for i, n in enumerate(names) if n in HOUSEHOLD_COMPARISONS)
        return cls(nik, equal, name, contradicts, birth, birth_contradicts, household)

    def contradicted(self, positions: Sequence[int]) -> bool:
        """Whether the pair's name AND birth date (where known) disagree: never an auto-link, whatever
        the rest (an equal NIK, or a household's address, KK and village) adds up to."""
        if positions[self.name] not in self.name_contradicts:
            return False
        return self.birth is None or positions[self.birth] in self.birth_contradicts

    def applies(self, positions: Sequence[int]) -> bool:
        """Whether a pair with these level positions (one per comparison) is a relative's NIK."""
        return positions[self.nik] in self.nik_equal and self.contradicted(positions)


def without_relative_niks(
    candidates: Sequence[Candidate], predictions: Mapping[str, Sequence[Any]], model: Mapping[str, Any]
) -> list[Candidate]:
    """The batch path's rule on Splink predictions (`candidates` built from the same `predictions`, in
    order; the predictions must retain Splink's intermediate columns, i.e. each comparison's weight
    `mw_<name>`).

    Splink 5 reports a pair's per-comparison weight, not its level, so a level is recognised by its
    weight: a pair is at one of the rule's levels only when its weight equals that level's and no level
    outside the rule's set has the same weight (ambiguous weights never trigger the rule). Records with
    a relative's-NIK pair get every candidate's NIK weight removed; every pair whose name and birth date
    disagree is marked (`Candidate.contradicted`) so it is never auto-linked, and loses its household
    comparisons' weights."""
    rule = RelativeNikRule.from_model(model)
    if rule is None:
        return list(candidates)
    params = read_model_parameters(model)
    used = [(rule.nik, rule.nik_equal), (rule.name, rule.name_contradicts)]
    if rule.birth is not None:
        used.append((rule.birth, rule.birth_contradicts))
    columns = [f"mw_{params.comparisons[c].name}" for c, _ in used]
    household = [f"mw_{params.comparisons[c].name}" for c in rule.household]
    if any(col not in predictions for col in columns + household):
        return list(candidates)
    # Splink keeps a comparison's term-frequency adjustment in its own column
    tf_columns = [f"mw_tf_adj_{params.comparisons[c].name}" for c in rule.household]

    def household_weight(i: int) -> float:
        total = 0.0
        for mw, tf in zip(household, tf_columns, strict=True):
            weight = float(predictions[mw][i]) + (float(predictions[tf][i]) if tf in predictions else 0.0)
            total += max(weight, 0.0)
        return total

    tests = [_weight_test([lv.match_weight for lv in params.comparisons[c].levels], wanted) for c, wanted in used]
    contradicted = [
        all(test(float(predictions[col][i])) for test, col in zip(tests[1:], columns[1:], strict=True))
        for i in range(len(candidates))
    ]
    nik_weights = predictions[columns[0]]
    records = {
        c.record_id
        for i, (c, bad) in enumerate(zip(candidates, contradicted, strict=True))
        if bad and tests[0](float(nik_weights[i]))
    }
    out: list[Candidate] = []
    for i, cand in enumerate(candidates):
        weight = cand.match_weight
        if cand.record_id in records:
            weight -= float(nik_weights[i])
        if contradicted[i]:
            weight -= household_weight(i)
        if cand.record_id in records or contradicted[i]:
            cand = Candidate(cand.record_id, cand.master_record_id, weight, match_probability(weight), contradicted[i])
        out.append(cand)
    return out


def _weight_test(weights: Sequence[float], wanted: frozenset[int]) -> Callable[[float], bool]:
    """Whether a comparison weight can only come from a level in `wanted` (positions in `weights`)."""
    inside = [w for p, w in enumerate(weights) if p in wanted]
    outside = [w for p, w in enumerate(weights) if p not in wanted]

    def test(value: float) -> bool:
        if not any(abs(value - w) <= 1e-9 for w in inside):
            return False
        return not any(abs(value - w) <= 1e-9 for w in outside)

    return test


def discount_pairs(
    rule: RelativeNikRule | None,
    query_index: npt.NDArray[np.int64],
    levels: npt.NDArray[np.int16],
    weights: npt.NDArray[np.float64],
    totals: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
    """The engine's rule on scored pairs (levels/weights: one row per comparison, one column per pair).

    Returns (totals without the NIK weight on every pair of a query with a relative's NIK and without the
    household weights on every pair whose name and birth date disagree, the relative's-NIK queries'
    pairs, the disagreeing pairs - never auto-linked), or None when no pair disagrees. Only positive
    household weights are taken out: a different household still speaks against the person."""
    if rule is None or not len(query_index):
        return None
    contradicted = np.isin(levels[rule.name], list(rule.name_contradicts))
    if rule.birth is not None:
        contradicted &= np.isin(levels[rule.birth], list(rule.birth_contradicts))
    if not contradicted.any():
        return None
    relative = contradicted & np.isin(levels[rule.nik], list(rule.nik_equal))
    affected = np.isin(query_index, np.unique(query_index[relative]))
    out = totals.copy()
    out[affected] -= weights[rule.nik, affected]
    if rule.household:
        out[contradicted] -= np.maximum(weights[list(rule.household)][:, contradicted], 0.0).sum(axis=0)
    return out, affected, contradicted
