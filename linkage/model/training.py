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

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from linkage.comparisons import Source
from linkage.model.splink_session import (
    build_linker,
    candidates_of,
    dialect_of,
    model_for_backend,
    model_to_duckdb,
    rendered_settings,
)
from linkage.normalise.family import Candidate
from linkage.spec import MIN_ACTIVE, ModelSpec, active_comparisons, spec_for_tables

DEFAULT_MAX_PAIRS = 1_000_000
DEFAULT_SEED = 20221015  # first day of the REGSOSEK enumeration
# Share of true matches the deterministic rules are assumed to find (only seeds the prior).
DETERMINISTIC_RECALL = 0.7
PRIOR_ITERATIONS = 50
# Cap of the estimated share of records that are in the master: the prior odds grow as 1 / (1 - share),
# and a file assumed (almost) wholly contained would auto-link a weak lone candidate.
MAX_MATCHED_SHARE = 0.95
# Records sampled to re-estimate the prior (see `refined_prior`).
PRIOR_SAMPLE = 20_000
# A level's u never drops below this share of its sampled value when the matches are taken out.
MIN_U_SHARE = 0.01
# Prefix of the column copies a merged EM pass blocks on (see `_em_passes`).
EM_ALIAS = "em_block_"

Progress = Callable[[str], None]


def em_step_name(rule: Sequence[str]) -> str:
    """The progress step name of an EM pass."""
    return f"m (EM blocked on {'+'.join(rule)})"


def _fix_m_except(model: dict[str, Any], free: set[str], *, fixed: bool) -> dict[str, Any]:
    """Set every non-null level's `fix_m_probability` to `fixed`, and to False in the `free` comparisons
    (a comparison fixed in an earlier pass must move again when its own pass comes)."""
    for comparison in model["comparisons"]:
        flag = fixed and comparison["output_column_name"] not in free
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                level["fix_m_probability"] = flag
    return model


def estimate_prior(
    candidates: Sequence[Candidate],
    prior: float,
    master_rows: int,
    record_rows: int,
    iterations: int = PRIOR_ITERATIONS,
) -> float:
    """The prior under which a record's best-candidate probability is its record-level posterior.

    Each record matches at most one master record: with the share `pi` of records that are in the master
    and the match spread evenly over the N master records, a record's candidates j have posterior
    `(pi/N) B_j / ((1 - pi) + (pi/N) sum_k B_k)`, B being the Bayes factors (the pairs' weights less the
    prior's). `pi` is the mean over records of their candidates' posteriors (EM on this one parameter).
    The returned pairwise prior has odds `pi / ((1 - pi) N)`: then Splink's pairwise probability of a
    record's only candidate equals that posterior, so the bands' probabilities mean what they say for
    the one link each record gets. (A pairwise prior of `pi / N` would ignore that a record of a file
    largely contained in the master is probably in it, and understate every probability near the
    review/auto-link border.) Pairs the blocking rules miss count as unmatched: `pi` errs low. `pi` is
    capped at `MAX_MATCHED_SHARE`.
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
    pi = min(pi, MAX_MATCHED_SHARE)
    odds = pi / ((1 - pi) * master_rows)
    return odds / (1 + odds)


def train_model(
    master: pa.Table,
    records: pa.Table,
    spec: ModelSpec | Source,
    *,
    max_pairs: float = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    db_api: Any | None = None,
) -> dict[str, Any]:
    """Train a model on prepared tables; returns the Splink model as a JSON-able dict in DuckDB's dialect.

    `spec` is a chosen spec, or a source whose spec is chosen here from the tables' fill rates.
    `db_api` is the Splink backend every step runs on (a fresh DuckDB per step when None; e.g. Spark via
    `linkage.model.spark.spark_db_api`): the steps are the same, only the SQL dialect differs, and a
    model trained elsewhere is rendered back in DuckDB SQL at the end (`model_to_duckdb`)."""
    from splink import block_on

    if isinstance(spec, str):
        spec = spec_for_tables(spec, master, records)
    step = progress or (lambda _msg: None)
    duck = dialect_of(db_api) == "duckdb"
    settings = spec.render_settings() if duck else rendered_settings(spec, db_api)
    linker = build_linker(master, records, settings, db_api=db_api)
    step("prior")
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in spec.prior_rules], recall=DETERMINISTIC_RECALL
    )
    step("u (random sampling)")
    # Spark: one pass over the sample per comparison. Splink's default (a probe, then up to 10 chunks,
    # stopping once every level is seen 100 times) is cheap on DuckDB, but every chunk is several Spark
    # jobs: 47 chunks took 270 s of a 3,000-person training in local mode. One chunk reads all max_pairs.
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed, num_chunks=10 if duck else 1)
    model: dict[str, Any] = linker.misc.save_model_to_json()
    model = _em_passes(master, records, spec, model, step, db_api)
    step("prior (from predictions)")
    model["probability_two_random_records_match"] = refined_prior(master, records, model, db_api=db_api)
    model = without_matches_in_u(model, matched_pair_rate(model, master.num_rows))
    model["probability_two_random_records_match"] = refined_prior(master, records, model, db_api=db_api)
    return model if duck else model_to_duckdb(model, spec)


def matched_pair_rate(model: dict[str, Any], master_rows: int) -> float:
    """Share of all (record, master) pairs that match, from the record-level prior (`estimate_prior`)."""
    prior = float(model["probability_two_random_records_match"])
    odds = prior / (1 - prior) * master_rows  # pi / (1 - pi)
    return odds / (1 + odds) / master_rows


def without_matches_in_u(model: dict[str, Any], rate: float) -> dict[str, Any]:
    """u with the true matches taken out of Splink's random sample (returns a new dict).

    The random pairs u is estimated from include matches at `rate`; where u is as small as that (a NIK,
    an exact birth date in a master of a few thousand) they ARE most of it: FEBRL4's exact birth date
    had u 2.0e-4, of which matches 1.7e-4. The non-match distribution is `(u - rate m) / (1 - rate)`,
    kept at no less than `MIN_U_SHARE` of the sampled u and renormalised over each comparison's levels."""
    out: dict[str, Any] = json.loads(json.dumps(model))
    for comparison in out["comparisons"]:
        levels = [
            lv
            for lv in comparison["comparison_levels"]
            if not lv.get("is_null_level")
            and isinstance(lv.get("u_probability"), float | int)
            and isinstance(lv.get("m_probability"), float | int)
        ]
        corrected = [
            max(lv["u_probability"] - rate * lv["m_probability"], MIN_U_SHARE * lv["u_probability"]) for lv in levels
        ]
        total = sum(corrected)
        if total <= 0:
            continue
        scale = sum(lv["u_probability"] for lv in levels) / total
        for level, u in zip(levels, corrected, strict=True):
            level["u_probability"] = u * scale
    return out


def _floor_fixed(model: dict[str, Any], free: set[str]) -> dict[str, Any]:
    from linkage.model.artefact import M_FLOOR

    for comparison in model["comparisons"]:
        if comparison["output_column_name"] in free:
            continue
        for level in comparison["comparison_levels"]:
            m = level.get("m_probability")
            if not level.get("is_null_level") and not (isinstance(m, float | int) and m >= M_FLOOR):
                level["m_probability"] = M_FLOOR
    return model


def _aliased(table: pa.Table, columns: set[str]) -> pa.Table:
    for column in sorted(columns):
        table = table.append_column(f"{EM_ALIAS}{column}", table.column(column))
    return table


def _em_passes(
    master: pa.Table, records: pa.Table, spec: ModelSpec, model: dict[str, Any], step: Progress, db_api: Any | None
) -> dict[str, Any]:
    """Run the spec's EM passes; returns the model with every m free again.

    A pass leaving a single comparison active cannot tell the share of matches among its pairs from that
    comparison's m (EM then calls every disagreement a non-match). Such passes are merged into ONE pass
    over the union of their pairs, blocked on copies of the columns so that Splink keeps every
    comparison active (e.g. name + birth date only: pairs with the same birth date OR the same name)."""
    from splink import block_on

    strong = [r for r in spec.em_rules if len(active_comparisons(spec.comparisons, r)) >= MIN_ACTIVE]
    weak = [r for r in spec.em_rules if r not in strong]
    trained: set[str] = set()
    passes: list[tuple[str, Any, set[str]]] = [
        (em_step_name(r), block_on(*r), {c.name for c in active_comparisons(spec.comparisons, r)}) for r in strong
    ]
    aliases: set[str] = set()
    if weak:
        aliases = {c for r in weak for c in r}
        # Unquoted: the aliases are plain lower-case identifiers, and the quoting differs by dialect.
        sql = " OR ".join("(" + " AND ".join(f"l.{EM_ALIAS}{c} = r.{EM_ALIAS}{c}" for c in r) + ")" for r in weak)
        name = f"m (EM blocked on {' or '.join('+'.join(r) for r in weak)})"
        passes.append((name, sql, {c.name for c in spec.comparisons}))
    em_master, em_records = (_aliased(master, aliases), _aliased(records, aliases)) if aliases else (master, records)
    for i, (name, rule, active) in enumerate(passes):
        frees = active - trained
        if i > 0:
            # Only the newly trainable comparisons move; everything learnt earlier stays fixed, with the
            # m floors applied: a level an earlier pass never saw has no m, and a fixed missing m turns
            # the whole pass into NaN (Splink then saves no m at all for the comparison being trained).
            model = _floor_fixed(_fix_m_except(model, frees, fixed=True), frees)
        linker = build_linker(em_master, em_records, model, db_api=db_api)
        step(name)
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
        model = linker.misc.save_model_to_json()
        trained |= frees
    return _fix_m_except(model, set(), fixed=False)


def refined_prior(
    master: pa.Table,
    records: pa.Table,
    model: dict[str, Any],
    seed: int = DEFAULT_SEED,
    *,
    db_api: Any | None = None,
) -> float:
    """`estimate_prior` on the blocked pairs scored by `model` (with m/u floors applied first).

    The matched share is a mean over records: a seeded sample of `PRIOR_SAMPLE` records estimates it
    and bounds the cost of this prediction on big files. `model` is in `db_api`'s dialect."""
    import numpy as np

    from linkage.model.artefact import regularise

    if records.num_rows > PRIOR_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(records.num_rows, PRIOR_SAMPLE, replace=False))
        records = records.take(pa.array(rows))
    regular = regularise(model)
    linker = build_linker(master, records, regular, db_api=db_api)
    candidates = candidates_of(linker.inference.predict().as_dict())
    return estimate_prior(
        candidates, float(regular["probability_two_random_records_match"]), master.num_rows, records.num_rows
    )


# Weight of the unsupervised m in `m_from_labels`, as a number of labelled pairs (a Dirichlet prior):
# with few labels m stays near the unsupervised estimate, with many it follows the labels.
LABEL_PRIOR_PAIRS = 500


def m_from_labels(
    master: pa.Table,
    records: pa.Table,
    model: dict[str, Any],
    matches: Sequence[tuple[str, str]],
    *,
    prior_pairs: float = LABEL_PRIOR_PAIRS,
    db_api: Any | None = None,
    spec: ModelSpec | Source = "members",
) -> dict[str, Any]:
    """m re-estimated from labelled matching pairs `(record id, master record id)` (returns a new dict).

    Splink's `estimate_m_from_pairwise_labels` counts the comparison levels of the labelled pairs (every
    level's m starts empty, so a level no labelled pair reaches gets m 0 from the labels). The result is
    blended with the model's own m: `(n m_labels + k m_model) / (n + k)`, n the labelled pairs and
    k = `prior_pairs`. u is kept: non-matches labelled in review are the hardest ones, not a sample of
    all non-matching pairs, and u from random sampling is already near exact. Pairs whose ids are not in
    the tables are left out by the join. `model` is in DuckDB's dialect (an artefact's), and so is the
    result; Splink counts on `db_api` (DuckDB when None) with the model rendered by `spec`."""
    import duckdb
    from splink import DuckDBAPI

    from linkage.model.splink_session import input_names

    out: dict[str, Any] = json.loads(json.dumps(model))
    if not matches:
        return out
    blank: dict[str, Any] = json.loads(json.dumps(model))
    for comparison in blank["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                level.pop("m_probability", None)
                level["fix_m_probability"] = False
    if db_api is None:
        db_api = DuckDBAPI(duckdb.connect())
    blank = model_for_backend(blank, spec, db_api)
    master_name, records_name = input_names()
    linker = build_linker(master, records, blank, db_api=db_api, names=(master_name, records_name))
    labels = pa.table(
        {
            "source_dataset_l": pa.array([records_name] * len(matches), pa.string()),
            "record_id_l": pa.array([r for r, _ in matches], pa.string()),
            "source_dataset_r": pa.array([master_name] * len(matches), pa.string()),
            "record_id_r": pa.array([m for _, m in matches], pa.string()),
        }
    )
    table = db_api.register(labels, table_name=f"labels_{master_name}")
    linker.training.estimate_m_from_pairwise_labels(table)
    learnt = linker.misc.save_model_to_json()
    n = float(len(matches))
    for target, trained in zip(out["comparisons"], learnt["comparisons"], strict=True):
        for level, new in zip(target["comparison_levels"], trained["comparison_levels"], strict=True):
            if level.get("is_null_level"):
                continue
            m_label = new.get("m_probability")
            m_label = float(m_label) if isinstance(m_label, float | int) and not math.isnan(m_label) else 0.0
            m_model = level.get("m_probability")
            m_model = float(m_model) if isinstance(m_model, float | int) else 0.0
            level["m_probability"] = (n * m_label + prior_pairs * m_model) / (n + prior_pairs)
    return out
