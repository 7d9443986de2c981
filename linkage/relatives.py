"""A relative's NIK: a record whose NIK is held in the master by someone its name and birth date deny.

Surveys often write another family member's NIK (the head's, a parent's, a child's). Fellegi-Sunter
then sees "NIK equal" - the strongest evidence in the model - and links the record to the NIK's holder
even though the names share nothing and the birth dates differ. The rule here reads the pair's levels:

    NIK at an equal level  AND  name at the ELSE level  AND  birth date at the ELSE or a null level

A record with such a pair is resolved WITHOUT its NIK: on every one of its candidate pairs the NIK
comparison's weight is taken out (as if the NIK were missing), so the right person - usually a member
of the holder's KK, found by the name, birth-date and KK blocking rules - can win on the rest of the
evidence; the pair with the holder is never auto-linked (at most review). Both the batch path (Splink
predictions) and the engine apply it, from the same trained model JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from linkage.engine.conditions import AllOf, Condition, Equal, Otherwise, parse_condition
from linkage.engine.decisions import match_probability
from linkage.engine.params import ModelParameters
from linkage.normalise.family import Candidate

NIK_COMPARISON = "nik"
NAME_COMPARISON = "name"
BIRTH_COMPARISON = "birth_date"
EXPLANATION = "NIK of a relative (its holder's name and birth date disagree): not used as evidence"


def _names(model: Mapping[str, Any]) -> list[str]:
    return [str(c.get("output_column_name") or "") for c in model.get("comparisons", [])]


def gamma_positions(levels: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Splink's comparison-vector value (gamma) of each level -> its position in the level list
    (null levels are -1; the others count down to 0 at ELSE)."""
    out: dict[int, int] = {}
    counter = sum(1 for lv in levels if not lv.get("is_null_level")) - 1
    for pos, level in enumerate(levels):
        if level.get("is_null_level"):
            out.setdefault(-1, pos)
        else:
            out[counter] = pos
            counter -= 1
    return out


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
        return cls(nik, equal, name, contradicts, birth, birth_contradicts)

    def applies(self, positions: Sequence[int]) -> bool:
        """Whether a pair with these level positions (one per comparison) is a relative's NIK."""
        if positions[self.nik] not in self.nik_equal or positions[self.name] not in self.name_contradicts:
            return False
        return self.birth is None or positions[self.birth] in self.birth_contradicts


def without_relative_niks(
    candidates: Sequence[Candidate], predictions: Mapping[str, Sequence[Any]], model: Mapping[str, Any]
) -> list[Candidate]:
    """The batch path's rule on Splink predictions (`candidates` built from the same `predictions`, in
    order; the model's predictions must retain Splink's intermediate columns `gamma_*` and `bf_nik`).

    Records with a relative's-NIK pair get every candidate's NIK weight removed, and that pair is
    marked (`Candidate.relative_nik`) so it is never auto-linked. Other records are unchanged."""
    rule = RelativeNikRule.from_model(model)
    names = _names(model)
    gamma_columns = [f"gamma_{n}" for n in names]
    nik_bf = f"bf_{NIK_COMPARISON}"
    if rule is None or nik_bf not in predictions or any(c not in predictions for c in gamma_columns):
        return list(candidates)
    to_position = [gamma_positions(c["comparison_levels"]) for c in model["comparisons"]]
    used = (rule.nik, rule.name) if rule.birth is None else (rule.nik, rule.name, rule.birth)
    flagged: list[bool] = []
    for i in range(len(candidates)):
        positions = [0] * len(names)
        for c in used:
            positions[c] = to_position[c].get(int(predictions[gamma_columns[c]][i]), -1)
        flagged.append(rule.applies(positions))
    records = {c.record_id for c, f in zip(candidates, flagged, strict=True) if f}
    if not records:
        return list(candidates)
    out: list[Candidate] = []
    for i, cand in enumerate(candidates):
        if cand.record_id not in records:
            out.append(cand)
            continue
        weight = cand.match_weight - math.log2(float(predictions[nik_bf][i]))
        out.append(Candidate(cand.record_id, cand.master_record_id, weight, match_probability(weight), flagged[i]))
    return out


def discount_pairs(
    rule: RelativeNikRule | None,
    query_index: npt.NDArray[np.int64],
    levels: npt.NDArray[np.int16],
    weights: npt.NDArray[np.float64],
    totals: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
    """The engine's rule on scored pairs (levels/weights: one row per comparison, one column per pair).

    Returns (totals without the NIK weight on every pair of an affected query, affected pairs, relative's
    NIK pairs), or None when no pair is a relative's NIK."""
    if rule is None or not len(query_index):
        return None
    flagged = np.isin(levels[rule.nik], list(rule.nik_equal)) & np.isin(levels[rule.name], list(rule.name_contradicts))
    if rule.birth is not None:
        flagged &= np.isin(levels[rule.birth], list(rule.birth_contradicts))
    if not flagged.any():
        return None
    affected = np.isin(query_index, np.unique(query_index[flagged]))
    out = totals.copy()
    out[affected] -= weights[rule.nik, affected]
    return out, affected, flagged
