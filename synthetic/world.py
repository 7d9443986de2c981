"""generate_world: one deterministic synthetic REGSOSEK world in a folder of Parquet/JSONL files."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthetic.members import list_members
from synthetic.population import generate_population, population_table
from synthetic.profile import NoiseProfile
from synthetic.regions import crosswalk_table, load_regency, neighbour_district_codes
from synthetic.sectoral import Sectoral, generate_bpjs, generate_dtks
from synthetic.submissions import MemberTruth, build_submissions

#: Progress callback: (stage name, done, total).
Progress = Callable[[str, int, int], None]

STAGES = ("regions", "population", "sectoral", "members", "submissions", "truth")


@dataclass(frozen=True)
class World:
    """The files of a generated world and what they hold."""

    population: Path
    crosswalk: Path
    dtks: Path
    bpjs: Path
    submissions: Path
    truth: Path
    persons: int  # rows of population.parquet
    families: int  # KK families in the master
    submission_count: int  # lines of submissions.jsonl (revisions and duplicates included)
    member_records: int  # members over all submissions
    dtks_rows: int
    bpjs_rows: int


def _write(table: pa.Table, path: Path) -> None:
    # Fixed writer options so that equal tables give equal bytes.
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=True)


def _truth_table(members: MemberTruth, dtks: Sectoral, bpjs: Sectoral) -> pa.Table:
    n_m, n_d, n_b = len(members.record_id), len(dtks.record_id), len(bpjs.record_id)
    return pa.table(
        {
            "source": pa.array(["member"] * n_m + ["dtks"] * n_d + ["bpjs"] * n_b, pa.string()),
            "record_id": pa.array(members.record_id + dtks.record_id + bpjs.record_id, pa.string()),
            "member_key": pa.array(members.member_key + [None] * (n_d + n_b), pa.string()),
            "true_nik": pa.array(members.true_nik + dtks.true_nik + bpjs.true_nik, pa.string()),
            "noise": pa.array(members.noise + dtks.noise + bpjs.noise, pa.string()),
        }
    )


def generate_world(
    out_dir: Path,
    *,
    regency: str = "3603",
    persons: int,
    seed: int,
    profile: NoiseProfile | None = None,
    progress: Progress | None = None,
) -> World:
    """Generate a synthetic world for `regency` with `persons` master records, deterministic for `seed`.

    Writes population.parquet, crosswalk.parquet, dtks.parquet, bpjs.parquet, submissions.jsonl and
    truth.parquet into `out_dir` (created if needed). Raises ValueError for an unknown regency or a
    non-positive person count.
    """
    if persons < 1:
        raise ValueError("persons must be at least 1")
    profile = profile or NoiseProfile()
    step = progress or (lambda stage, done, total: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)

    step("regions", 0, 1)
    region = load_regency(regency)
    neighbours = neighbour_district_codes(region)
    _write(crosswalk_table(region), out_dir / "crosswalk.parquet")
    step("regions", 1, 1)

    step("population", 0, 1)
    pop = generate_population(rng, region, persons, profile, neighbours)
    _write(population_table(pop, region), out_dir / "population.parquet")
    step("population", 1, 1)

    step("sectoral", 0, 2)
    dtks = generate_dtks(rng, pop, region, profile, rnd)
    _write(dtks.table, out_dir / "dtks.parquet")
    step("sectoral", 1, 2)
    bpjs = generate_bpjs(rng, pop, region, profile, rnd)
    _write(bpjs.table, out_dir / "bpjs.parquet")
    step("sectoral", 2, 2)
    bpjs_person = np.zeros(pop.persons, bool)
    bpjs_person[bpjs.person[bpjs.person >= 0]] = True

    step("members", 0, 1)
    base = list_members(rng, pop, profile, neighbours)
    step("members", 1, 1)

    lines, member_truth, n_sub, n_rec = build_submissions(
        rng,
        pop,
        base,
        region,
        profile,
        bpjs_person,
        rnd,
        progress=lambda done, total: step("submissions", done, total),
    )
    step("submissions", 0, n_sub)
    with (out_dir / "submissions.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
    step("submissions", n_sub, n_sub)

    step("truth", 0, 1)
    _write(_truth_table(member_truth, dtks, bpjs), out_dir / "truth.parquet")
    step("truth", 1, 1)
    return World(
        population=out_dir / "population.parquet",
        crosswalk=out_dir / "crosswalk.parquet",
        dtks=out_dir / "dtks.parquet",
        bpjs=out_dir / "bpjs.parquet",
        submissions=out_dir / "submissions.jsonl",
        truth=out_dir / "truth.parquet",
        persons=pop.persons,
        families=pop.families,
        submission_count=n_sub,
        member_records=n_rec,
        dtks_rows=dtks.table.num_rows,
        bpjs_rows=bpjs.table.num_rows,
    )
