"""Unsupervised training of one model spec (u by random sampling, m by EM, the prior), never on the truth.

The spec (`linkage.spec.ModelSpec`) says which comparisons, EM passes and prior rules the columns of
these files support. u comes from a seeded random sample of pairs. m comes from EM in the spec's passes:
the first pass (e.g. blocked on NIK: pairs sharing a NIK are nearly all true matches) learns every
comparison that does not read the rule's columns; each later pass learns only the comparisons no earlier
pass could, with the others' m FIXED. Fixing them matters: a free later pass drives rare levels' m to
exactly 0 (Splink then refuses the value) and double-counts the evidence.

The prior (probability that two random records match) is seeded from the spec's deterministic rules with
an assumed recall, then re-estimated from the trained model's own predictions (`estimate_prior`): the
deterministic seed assumes a recall it cannot know, and a wrong prior shifts every probability, which
puts right links into review and wrong ones above the auto-link threshold.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from linkage.comparisons import Source
from linkage.model.splink_session import build_linker, candidates_of
from linkage.normalise.family import Candidate
from linkage.spec import ModelSpec, spec_for_tables

DEFAULT_MAX_PAIRS = 1_000_000
DEFAULT_SEED = 20221015  # first day of the REGSOSEK enumeration
# Share of true matches the deterministic rules are assumed to find (only seeds the prior).
DETERMINISTIC_RECALL = 0.7
PRIOR_ITERATIONS = 50

Progress = Callable[[str], None]


def em_step_name(rule: Sequence[str]) -> str:
    """The progress step name of an EM pass."""
    return f"m (EM blocked on {'+'.join(rule)})"


def _fix_m_except(model: dict[str, Any], free: set[str], *, fixed: bool) -> dict[str, Any]:
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] in free:
            continue
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                level["fix_m_probability"] = fixed
    return model


def estimate_prior(
    candidates: Sequence[Candidate],
    prior: float,
    master_rows: int,
    record_rows: int,
    iterations: int = PRIOR_ITERATIONS,
) -> float:
    """The prior that makes the model's expected number of matched records agree with its predictions.

    Each record matches at most one master record: with the record-level match rate `pi` spread evenly
    over the master, a record's candidates j have posterior `(pi/N) B_j / ((1 - pi) + (pi/N) sum_k B_k)`,
    B being the Bayes factors (the pairs' weights less the prior's). `pi` is then the mean over records
    of their candidates' posteriors (EM on this one parameter); the pairwise prior is `pi / N`. Pairs
    the blocking rules miss count as unmatched, so the estimate errs low, never high.
    """
    if not candidates or master_rows <= 0 or record_rows <= 0:
        return prior
    prior_weight = math.log2(prior / (1 - prior))
    log2_sums: dict[str, float] = {}
    by_record: dict[str, list[float]] = defaultdict(list)
    for c in candidates:
        by_record[c.record_id].append(c.match_weight - prior_weight)
    for rid, bfs in by_record.items():
        top = max(bfs)
        log2_sums[rid] = top + math.log2(sum(2.0 ** (b - top) for b in bfs))
    pi = min(0.5, max(prior * master_rows, 1e-6))
    for _ in range(iterations):
        scale = pi / master_rows
        total = 0.0
        for s in log2_sums.values():
            matched = scale * 2.0**s if s < 1000 else math.inf
            total += 1.0 if math.isinf(matched) else matched / ((1 - pi) + matched)
        new = min(max(total / record_rows, 1e-6), 1 - 1e-6)
        if abs(new - pi) < 1e-7:
            pi = new
            break
        pi = new
    return pi / master_rows


def train_model(
    master: pa.Table,
    records: pa.Table,
    spec: ModelSpec | Source,
    *,
    max_pairs: float = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train a model on prepared tables; returns the Splink model as a JSON-able dict.

    `spec` is a chosen spec, or a source whose spec is chosen here from the tables' fill rates."""
    from splink import block_on

    if isinstance(spec, str):
        spec = spec_for_tables(spec, master, records)
    step = progress or (lambda _msg: None)
    linker = build_linker(master, records, spec.render_settings())
    step("prior")
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in spec.prior_rules], recall=DETERMINISTIC_RECALL
    )
    step("u (random sampling)")
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    trained: set[str] = set()
    for i, rule in enumerate(spec.em_rules):
        frees = {c.name for c in spec.comparisons if c.name not in trained and not set(rule) & set(c.columns())}
        if i > 0:
            # Only the newly trainable comparisons move; everything learnt earlier stays fixed.
            model = _fix_m_except(linker.misc.save_model_to_json(), frees, fixed=True)
            linker = build_linker(master, records, model)
        step(em_step_name(rule))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
        trained |= frees
    result: dict[str, Any] = _fix_m_except(linker.misc.save_model_to_json(), set(), fixed=False)
    step("prior (from predictions)")
    result["probability_two_random_records_match"] = refined_prior(master, records, result)
    return result


def refined_prior(master: pa.Table, records: pa.Table, model: dict[str, Any]) -> float:
    """`estimate_prior` on the blocked pairs scored by `model` (with m/u floors applied first)."""
    from linkage.model.artefact import regularise

    regular = regularise(model)
    linker = build_linker(master, records, regular)
    candidates = candidates_of(linker.inference.predict().as_dict())
    return estimate_prior(
        candidates, float(regular["probability_two_random_records_match"]), master.num_rows, records.num_rows
    )
