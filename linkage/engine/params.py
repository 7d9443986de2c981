"""Read a trained Splink model JSON into the numbers the engine scores with.

The weights are computed exactly as Splink 5.0.0 computes them (additive log2 space):
- a level's match weight is `log2(max(m, 1e-300) / max(u, 1e-300))`, a null level weighs 0, and a
  level without a trained m or u (absent from the JSON) uses Splink's default values;
- a term-frequency level adds `tf_weight * (log2(u_exact) - log2(max(tf, tf_minimum_u)))` where
  `u_exact` is the u of the comparison's exact-match level on the TF column;
- the total is `log2(p / (1 - p)) + sum(level weights + tf adjustments)`, p being
  `probability_two_random_records_match`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkage.engine.conditions import Condition, Equal, parse_blocking_rule, parse_condition
from linkage.engine.errors import UnsupportedModelError

_LEVEL_NOT_OBSERVED = "level not observed in training dataset"
_M_U_CLAMP_MIN = 1e-300

BlockingRule = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LevelParameters:
    """One comparison level: its condition, label and trained weight."""

    label: str
    condition: Condition
    is_null_level: bool
    match_weight: float
    tf_column: str | None = None
    tf_weight: float = 0.0
    tf_minimum_u: float = 0.0
    log2_u_exact: float = 0.0


@dataclass(frozen=True, slots=True)
class ComparisonParameters:
    """One comparison: its output name and ordered levels (the first level that applies wins)."""

    name: str
    levels: tuple[LevelParameters, ...]


@dataclass(frozen=True, slots=True)
class ModelParameters:
    """Everything the engine needs from a Splink model JSON."""

    probability_two_random_records_match: float
    comparisons: tuple[ComparisonParameters, ...]
    blocking_rules: tuple[BlockingRule, ...]
    unique_id_column: str

    @property
    def prior_match_weight(self) -> float:
        """`log2` of the prior odds, as Splink's `prob_to_match_weight`."""
        p = self.probability_two_random_records_match
        return math.log2(p / (1 - p))

    @property
    def columns(self) -> tuple[str, ...]:
        """Every input column used by a level or a blocking rule (sorted, for stable layouts)."""
        found: set[str] = set()
        for rule in self.blocking_rules:
            for left, right in rule:
                found.update((left, right))
        for comparison in self.comparisons:
            for level in comparison.levels:
                found.update(columns_of(level.condition))
                if level.tf_column:
                    found.add(level.tf_column)
        return tuple(sorted(found))


def columns_of(condition: Condition) -> set[str]:
    """Input columns a condition reads."""
    from linkage.engine import conditions as c

    if isinstance(condition, c.IsNull):
        return {column for column, _ in condition.terms}
    if isinstance(condition, c.Equal):
        return {condition.left, condition.right}
    if isinstance(condition, (c.AllOf, c.AnyOf)):
        out: set[str] = set()
        for part in condition.parts:
            out |= columns_of(part)
        return out
    if isinstance(condition, c.Otherwise):
        return set()
    return {condition.column}


def _default_m(num_levels: int, vector_value: int) -> float:
    """Splink's default m for an untrained level: 0.95 on the top level, the rest split evenly."""
    return 0.95 if vector_value == num_levels - 1 else 0.05 / (num_levels - 1)


def _default_u(num_levels: int, vector_value: int) -> float:
    """Splink's default u: the default m over a weight interpolated from -5 up to 3, and 10 on top."""
    if vector_value == num_levels - 1:
        weight = 10.0
    elif num_levels == 2:
        weight = -5.0
    else:
        weight = -5.0 + vector_value * (8.0 / (num_levels - 2))
    return _default_m(num_levels, vector_value) / math.pow(2.0, weight)


def _probability(level: Mapping[str, Any], key: str, num_levels: int, vector_value: int) -> float:
    """A trained probability, or Splink's default when the JSON has none (a saved model omits a level
    "not observed in training dataset", and Splink then falls back to its defaults)."""
    value = level.get(key)
    if value is None or value == _LEVEL_NOT_OBSERVED:
        default = _default_m if key == "m_probability" else _default_u
        return default(num_levels, vector_value)
    return float(value)


def _level_weight(level: Mapping[str, Any], num_levels: int, vector_value: int) -> float:
    m = max(_probability(level, "m_probability", num_levels, vector_value), _M_U_CLAMP_MIN)
    u = max(_probability(level, "u_probability", num_levels, vector_value), _M_U_CLAMP_MIN)
    return math.log2(m / u)


def _read_comparison(raw: Mapping[str, Any]) -> ComparisonParameters:
    name = str(raw.get("output_column_name") or raw.get("comparison_description") or "comparison")
    raw_levels = list(raw["comparison_levels"])
    conditions = [parse_condition(str(level["sql_condition"])) for level in raw_levels]
    num_levels = sum(1 for level in raw_levels if not level.get("is_null_level"))
    # Splink's comparison vector values: null level -1, the others counting down to 0 (ELSE).
    vector_values: list[int] = []
    counter = num_levels - 1
    for level in raw_levels:
        vector_values.append(-1 if level.get("is_null_level") else counter)
        counter -= 0 if level.get("is_null_level") else 1
    levels: list[LevelParameters] = []
    for raw_level, condition, cvv in zip(raw_levels, conditions, vector_values, strict=True):
        label = str(raw_level.get("label_for_charts") or raw_level["sql_condition"])
        if raw_level.get("is_null_level"):
            levels.append(LevelParameters(label, condition, True, 0.0))
            continue
        weight = _level_weight(raw_level, num_levels, cvv)
        tf_column = raw_level.get("tf_adjustment_column")
        tf_weight = float(raw_level.get("tf_adjustment_weight", 1.0)) if tf_column else 0.0
        if not tf_column or tf_weight == 0.0 or str(raw_level["sql_condition"]).strip().upper() == "ELSE":
            levels.append(LevelParameters(label, condition, False, weight))
            continue
        # Splink takes u from the comparison's exact-match level on the TF column (first one found).
        u_exact: float | None = None
        for other_raw, other, other_cvv in zip(raw_levels, conditions, vector_values, strict=True):
            if isinstance(other, Equal) and other.left == other.right == tf_column:
                u_exact = _probability(other_raw, "u_probability", num_levels, other_cvv)
                break
        if u_exact is None:
            raise UnsupportedModelError(
                f"level {label!r} has a term-frequency adjustment on {tf_column!r} but its comparison "
                "has no exact-match level on that column"
            )
        levels.append(
            LevelParameters(
                label,
                condition,
                False,
                weight,
                tf_column=str(tf_column),
                tf_weight=tf_weight,
                tf_minimum_u=float(raw_level.get("tf_minimum_u_value", 0.0)),
                log2_u_exact=math.log2(u_exact),
            )
        )
    return ComparisonParameters(name, tuple(levels))


def read_model_parameters(model: Mapping[str, Any] | str | Path) -> ModelParameters:
    """Read a Splink model (the dict, or the path of the JSON written by `save_model_to_json`)."""
    if isinstance(model, (str, Path)):
        try:
            model = json.loads(Path(model).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UnsupportedModelError(f"cannot read the Splink model JSON {model}: {e}") from e
    assert isinstance(model, Mapping)
    rules = []
    for rule in model.get("blocking_rules_to_generate_predictions", []):
        sql = rule["blocking_rule"] if isinstance(rule, Mapping) else str(rule)
        rules.append(parse_blocking_rule(str(sql)))
    if not rules:
        raise UnsupportedModelError("the model has no blocking rules: the engine needs them for candidates")
    return ModelParameters(
        probability_two_random_records_match=float(model["probability_two_random_records_match"]),
        comparisons=tuple(_read_comparison(c) for c in model["comparisons"]),
        blocking_rules=tuple(rules),
        unique_id_column=str(model.get("unique_id_column_name", "unique_id")),
    )
