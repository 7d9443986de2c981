"""Training time of one source's model on DuckDB and on Spark (local mode), same world, same steps.

    PYTHONPATH=$PWD .venv/bin/python bench/train_backends.py --world /tmp/w20k --world /tmp/w200k
    (worlds from `regsosek generate --out /tmp/w20k --persons 20000 --seed 7`)

Each world: `train_artefact` (u by sampling, m by EM, the prior from predictions) on DuckDB, then on a
Spark session started beforehand (its start-up is printed apart, not in the training time). Prints
seconds per engine, Spark / DuckDB, and the largest m difference between the two models.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from linkage.batch import train_artefact
from linkage.model.artefact import ModelArtefact
from linkage.model.training import DEFAULT_MAX_PAIRS
from linkage.normalise.prepare import prepare_table
from services.world import load_world_source


def _m(artefact: ModelArtefact) -> list[float]:
    return [
        float(lv["m_probability"])
        for c in artefact.model["comparisons"]
        for lv in c["comparison_levels"]
        if not lv.get("is_null_level")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, action="append", required=True, help="generated world folder")
    parser.add_argument("--source", default="dtks", choices=("members", "dtks", "bpjs"))
    parser.add_argument("--max-pairs", type=float, default=DEFAULT_MAX_PAIRS)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--engines", default="duckdb,spark", help="comma-separated: duckdb,spark")
    args = parser.parse_args()
    engines = args.engines.split(",")
    spark: Any = None
    if "spark" in engines:
        from linkage.model.spark import spark_db_api

        t0 = time.perf_counter()
        spark = spark_db_api(args.spark_master)
        print(f"spark session start ({args.spark_master}): {time.perf_counter() - t0:.1f}s", flush=True)
    print(
        f"{'world':<16} {'master':>8} {'records':>8} {'duckdb s':>9} {'spark s':>9} {'spark/duck':>10} {'max |dm|':>9}"
    )
    for world in args.world:
        master, records = load_world_source(str(world), args.source)
        pm, pr = prepare_table(master), prepare_table(records)
        seconds: dict[str, float] = {}
        models: dict[str, ModelArtefact] = {}
        for engine in engines:
            t0 = time.perf_counter()
            models[engine] = train_artefact(
                pm, pr, args.source, max_pairs=args.max_pairs, db_api=spark if engine == "spark" else None
            )
            seconds[engine] = time.perf_counter() - t0
        ratio = seconds["spark"] / seconds["duckdb"] if len(seconds) == 2 else float("nan")
        dm = (
            max(abs(a - b) for a, b in zip(_m(models["duckdb"]), _m(models["spark"]), strict=True))
            if len(models) == 2
            else float("nan")
        )
        print(
            f"{world.name:<16} {master.num_rows:>8} {records.num_rows:>8} {seconds.get('duckdb', float('nan')):>9.1f} "
            f"{seconds.get('spark', float('nan')):>9.1f} {ratio:>10.1f} {dm:>9.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
