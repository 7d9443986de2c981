"""Unsupervised training of one source's model (u by random sampling, m by EM), never on the truth.

The prior (probability that two random records match) is estimated from deterministic rules with an
assumed recall, u from a seeded random sample of pairs, and m by expectation maximisation in two
passes: blocked on NIK (pairs sharing a NIK are nearly all true matches, so every other comparison's m
is learnt cleanly), then blocked on name key + birth year with those m values FIXED, which trains the
NIK comparison. Fixing them matters: a free second pass drives rare levels' m to exactly 0 (Splink
then refuses the value) and double-counts the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from linkage.comparisons import COMPARISONS, DETERMINISTIC_RULES, EM_TRAINING_RULES, Source, render_settings
from linkage.model.splink_session import build_linker

DEFAULT_MAX_PAIRS = 1_000_000
DEFAULT_SEED = 20221015  # first day of the REGSOSEK enumeration
# Share of true matches the deterministic rules are assumed to find (for the prior only).
DETERMINISTIC_RECALL = 0.7

Progress = Callable[[str], None]


def _first_passes(linker: Any, *, max_pairs: float, seed: int, progress: Progress | None) -> Any:
    """Prior, u, and the NIK-blocked EM pass."""
    from splink import block_on

    step = progress or (lambda _msg: None)
    step("prior")
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in DETERMINISTIC_RULES], recall=DETERMINISTIC_RECALL
    )
    step("u (random sampling)")
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    first = EM_TRAINING_RULES[0]
    step(f"m (EM blocked on {'+'.join(first)})")
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(*first))
    return linker


def _fix_m_except(model: dict[str, Any], free: set[str], *, fixed: bool) -> dict[str, Any]:
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] in free:
            continue
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                level["fix_m_probability"] = fixed
    return model


def train_model(
    master: pa.Table,
    records: pa.Table,
    source: Source,
    *,
    max_pairs: float = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train `source`'s model on prepared tables; returns the Splink model as a JSON-able dict."""
    from splink import block_on

    step = progress or (lambda _msg: None)
    linker = build_linker(master, records, render_settings(source))
    _first_passes(linker, max_pairs=max_pairs, seed=seed, progress=step)
    nik_comparisons = {c.name for c in COMPARISONS[source] if "nik" in c.columns()}
    model = _fix_m_except(linker.misc.save_model_to_json(), nik_comparisons, fixed=True)
    second = EM_TRAINING_RULES[1]
    step(f"m (EM blocked on {'+'.join(second)})")
    linker = build_linker(master, records, model)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(*second))
    trained: dict[str, Any] = linker.misc.save_model_to_json()
    return _fix_m_except(trained, nik_comparisons, fixed=False)
