"""Benchmark: labels from (simulated) reviewers improve the model; age order vs uncertainty order.

    PYTHONPATH=. .venv/bin/python bench/active_learning.py [--persons 60000] [--seed 13] [--n 100 500 2000]

1. Generates a world (`--persons`, the `hard` profile with the field noise raised further: see
   `BENCH_PROFILE`) into `.run/bench/al-world-<persons>-<seed>` (reused when present).
2. Trains the members model unsupervised and starts it cautious: auto_link >= `--auto-link` (0.99999),
   review >= `--review` (0.01), as a new deployment without labels would; links every member.
3. The review tasks are the members in the review band. A simulated reviewer answers the first N
   tasks from the truth file: the shown candidates are the member's top 5 (as the review app shows);
   accept the true master record when shown, else "none of these" (new person). Two orders: `age`
   (the order the members were submitted) and `uncertainty` (`linkage.labels.uncertainty`, the review
   app's REGSOSEK_REVIEW_QUEUE_ORDER=uncertainty).
4. Retrains with the labels (`linkage.batch.train_with_labels`: m from the labelled matches, prior,
   thresholds calibrated for labelled precision >= 0.99) and scores the new links against the truth.
Prints precision / recall / F1 (auto-link and auto+review) and the review share before and after for
each order and N; writes .run/bench/active-learning-results.json. The truth is read only to simulate
the reviewers and to score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from linkage.batch import link_file, predict_pairs, train_artefact, train_with_labels  # noqa: E402
from linkage.evaluate import Evaluation, evaluate_links  # noqa: E402
from linkage.labels import MemberLabels, label_keys, uncertainty  # noqa: E402
from linkage.model.artefact import ModelArtefact  # noqa: E402
from linkage.normalise.prepare import prepare_table  # noqa: E402
from services.world import load_world_source  # noqa: E402
from synthetic.profile import NoiseProfile  # noqa: E402
from synthetic.world import generate_world  # noqa: E402

#: The `hard` profile with more members without NIK or KK and more name and birth-date noise, so that
#: a world of a few tens of thousands of members gives thousands of review tasks.
BENCH_PROFILE = {
    "kk_missing": 0.6,
    "nik_missing": 0.6,
    "nik_family_member": 0.04,
    "nik_relative": 0.02,
    "name_variant": 0.20,
    "name_honorific": 0.08,
    "name_token_dropped": 0.08,
    "name_token_added": 0.04,
    "name_reordered": 0.02,
    "name_initial": 0.06,
    "dob_swapped": 0.03,
    "dob_year_only": 0.09,
    "dob_placeholder": 0.03,
    "dob_year_off": 0.08,
    "sex_missing": 0.05,
    "addr_moved": 0.10,
    "addr_missing_part": 0.12,
    "addr_typo": 0.08,
}
SHOWN = 5


def _world(persons: int, seed: int) -> Path:
    folder = ROOT / ".run" / "bench" / f"al-world-{persons}-{seed}"
    if not (folder / "truth.parquet").exists():
        generate_world(folder, persons=persons, seed=seed, profile=replace(NoiseProfile.hard(), **BENCH_PROFILE))
    return folder


def _scores(ev: Evaluation) -> dict[str, float]:
    return {
        "auto_p": ev.auto.precision,
        "auto_r": ev.auto.recall,
        "auto_f1": ev.auto.f1,
        "ar_p": ev.auto_review.precision,
        "ar_r": ev.auto_review.recall,
        "ar_f1": ev.auto_review.f1,
        "review_share": ev.band_share["review"],
    }


def _simulate(
    tasks: list[str], shown: dict[str, list[str]], truth: dict[str, str | None], key_of: dict[str, str]
) -> dict[str, MemberLabels]:
    """The labels a reviewer who knows the truth gives on `tasks` (record ids)."""
    out = {}
    for rid in tasks:
        candidates = shown.get(rid, [])
        true = truth.get(rid)
        positive = true if true in candidates else None
        out[key_of[rid]] = MemberLabels(positive, frozenset(c for c in candidates if c != positive))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--orders", nargs="+", default=["age", "uncertainty"], choices=["age", "uncertainty"])
    parser.add_argument("--auto-link", type=float, default=0.99999)
    parser.add_argument("--review", type=float, default=0.01)
    args = parser.parse_args()
    started = time.perf_counter()
    world = _world(args.persons, args.seed)
    master, records = load_world_source(str(world), "members")
    truth_table = pq.read_table(world / "truth.parquet")
    truth = {
        str(r): (n or None)
        for r, n in zip(
            truth_table.column("record_id").to_pylist(), truth_table.column("true_nik").to_pylist(), strict=True
        )
    }
    ids = [str(r) for r in records.column("record_id").to_pylist()]
    key_of = dict(zip(ids, label_keys(records), strict=True))
    print(f"world {world.name}: {master.num_rows} master records, {records.num_rows} members", flush=True)

    t0 = time.perf_counter()
    pm, pr = prepare_table(master), prepare_table(records)
    unsupervised = train_artefact(pm, pr, "members")
    base = ModelArtefact(
        unsupervised.model,
        {**unsupervised.metadata, "thresholds": {"auto_link": args.auto_link, "review": args.review}},
    )
    before, _ = link_file(master, records, artefact=base)
    ev_before = evaluate_links(before, truth_table)
    print(f"unsupervised model trained and linked in {time.perf_counter() - t0:.0f} s", flush=True)

    by_record: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for c in predict_pairs(pm, pr, base.model, source=base.spec):
        by_record[c.record_id].append((c.match_probability, c.master_record_id))
    shown = {
        rid: [m for _, m in sorted(cands, key=lambda pm_: (-pm_[0], pm_[1]))[:SHOWN]]
        for rid, cands in by_record.items()
    }
    probs = {rid: sorted((p for p, _ in cands), reverse=True)[:SHOWN] for rid, cands in by_record.items()}
    review = [rid for rid, band in zip(ids, before.column("band").to_pylist(), strict=True) if band == "review"]
    print(f"review tasks: {len(review)} ({len(review) / len(ids):.2%} of the members)", flush=True)
    orders = {
        "age": review,
        "uncertainty": sorted(review, key=lambda r: -uncertainty(probs.get(r, []))),
    }

    rows: list[dict[str, Any]] = [
        {"order": "-", "n": 0, "labels": 0, "positives": 0, "thresholds": base.thresholds, **_scores(ev_before)}
    ]
    for order in args.orders:
        for n in args.n:
            t1 = time.perf_counter()
            labels = _simulate(orders[order][:n], shown, truth, key_of)
            out: list[pa.Table] = []
            artefact, calibration = train_with_labels(master, records, base, labels, links_out=out)
            ev = evaluate_links(out[0], truth_table)
            rows.append(
                {
                    "order": order,
                    "n": n,
                    "labels": len(labels),
                    "positives": sum(m.positive is not None for m in labels.values()),
                    "thresholds": calibration.thresholds,
                    "kept": list(calibration.kept),
                    "seconds": round(time.perf_counter() - t1, 1),
                    **_scores(ev),
                }
            )
            print(f"{order} N={n}: retrained in {time.perf_counter() - t1:.0f} s", flush=True)

    head = (
        f"{'order':<12}{'N':>6}{'pos':>6}{'auto_link':>11}{'review':>9}{'auto P':>8}{'auto R':>8}{'auto F1':>8}"
        f"{'a+r P':>8}{'a+r R':>8}{'a+r F1':>8}{'review':>8}"
    )
    print(head)
    for r in rows:
        t = r["thresholds"]
        print(
            f"{r['order']:<12}{r['n']:>6}{r['positives']:>6}{t['auto_link']:>11.6g}{t['review']:>9.4g}"
            f"{r['auto_p']:>8.4f}{r['auto_r']:>8.4f}{r['auto_f1']:>8.4f}{r['ar_p']:>8.4f}{r['ar_r']:>8.4f}"
            f"{r['ar_f1']:>8.4f}{r['review_share']:>8.4f}"
        )
    result = {
        "world": world.name,
        "members": len(ids),
        "review_tasks": len(review),
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = ROOT / ".run" / "bench" / "active-learning-results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
