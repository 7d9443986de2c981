"""Two sectoral databases over overlapping, poorer parts of the population: DTKS and BPJS PBI-JK.

Each has its own schema, ids and error profile (docs/data-model.md, docs/generator.md):
DTKS (Kemensos) lists whole poorer families, names in upper case, NIK about 80% present, stale rows of
people who died; BPJS PBI-JK lists state-insured individuals, NIK about 90% present and mostly right.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synthetic.extra_noise import rtrw_text
from synthetic.names import sample_names, spelling_variant
from synthetic.noise import choose, mistype_nik, transpose_nik
from synthetic.population import Population
from synthetic.profile import NoiseProfile
from synthetic.regions import Regency

# Probability that a family of welfare decile 1..10 is listed.
_DTKS_BY_DECILE = np.array([0.0, 0.9, 0.85, 0.8, 0.6, 0.35, 0.15, 0.06, 0.03, 0.02, 0.01])
_BPJS_BY_DECILE = np.array([0.0, 0.9, 0.85, 0.75, 0.7, 0.5, 0.2, 0.06, 0.03, 0.02, 0.01])


@dataclass(frozen=True)
class Sectoral:
    """One sectoral table plus its truth columns (record id, true NIK, noise tags)."""

    table: pa.Table
    record_id: list[str]
    true_nik: list[str | None]
    noise: list[str]
    person: np.ndarray  # master person index per row, -1 when not in the master


def _tags(*pairs: tuple[str, np.ndarray]) -> list[str]:
    n = len(pairs[0][1])
    tags: list[list[str]] = [[] for _ in range(n)]
    for tag, mask in pairs:
        for i in np.flatnonzero(mask).tolist():
            tags[i].append(tag)
    return ["|".join(t) for t in tags]


def _rows(
    rng: np.random.Generator, pop: Population, by_decile: np.ndarray, person_p: float, not_in_master: float
) -> tuple[np.ndarray, int]:
    fam_in = rng.random(pop.families) < by_decile[pop.decile]
    persons = np.flatnonzero(fam_in[pop.family] & (rng.random(pop.persons) < person_p))
    extra = int(round(len(persons) * not_in_master / max(1e-9, 1 - not_in_master)))
    return persons, extra


def _nik_column(
    rng: np.random.Generator,
    pop: Population,
    persons: np.ndarray,
    extra: int,
    present_rate: float,
    wrong_rate: float,
    rnd: random.Random,
) -> tuple[list[str | None], np.ndarray, np.ndarray, np.ndarray]:
    n = len(persons) + extra
    in_master = np.r_[np.ones(len(persons), bool), np.zeros(extra, bool)]
    missing = in_master & (rng.random(n) >= present_rate)
    wrong = choose(rng, in_master & ~missing, wrong_rate * present_rate, int(in_master.sum()))
    transposed = wrong & (rng.random(n) < 0.5)
    mistyped = wrong & ~transposed
    nik: list[str | None] = [str(x) for x in pop.nik[persons]] + [None] * extra
    for i in np.flatnonzero(missing).tolist():
        nik[i] = None
    for i in np.flatnonzero(transposed).tolist():
        nik[i] = transpose_nik(str(nik[i]), rnd)
    for i in np.flatnonzero(mistyped).tolist():
        nik[i] = mistype_nik(str(nik[i]), rnd)
    return nik, missing, transposed, mistyped


def _strangers(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    female = rng.random(n) < 0.5
    names = sample_names(rng, female, np.ones(n, bool))
    birth = np.datetime64("1950-01-01", "D") + rng.integers(0, 365 * 60, n)
    return names, female, birth


def generate_dtks(
    rng: np.random.Generator, pop: Population, regency: Regency, profile: NoiseProfile, rnd: random.Random
) -> Sectoral:
    """dtks.parquet: poorer families (all members), upper-case names, some stale and missing fields."""
    persons, extra = _rows(rng, pop, _DTKS_BY_DECILE, 0.97, profile.dtks_not_in_master)
    n = len(persons) + extra
    nik, missing, transposed, mistyped = _nik_column(
        rng, pop, persons, extra, profile.dtks_nik_present, profile.dtks_nik_wrong, rnd
    )
    s_names, s_female, s_birth = _strangers(rng, extra)
    in_master = np.r_[np.ones(len(persons), bool), np.zeros(extra, bool)]
    variant = choose(rng, in_master, 0.06, int(in_master.sum()))
    names = [str(x) for x in pop.full_name[persons]] + s_names
    for i in np.flatnonzero(variant).tolist():
        names[i] = spelling_variant(names[i], rnd)
    female = np.r_[pop.female[persons], s_female]
    sex_missing = rng.random(n) < 0.03
    birth = np.r_[pop.birth_date[persons], s_birth]
    dob_missing = rng.random(n) < 0.05
    vil_codes = np.array([v.kemendagri_code for v in regency.villages])
    fam = np.r_[pop.family[persons], rng.integers(0, pop.families, extra)]
    village = pop.village[fam]
    village = _stale_village(rng, village, regency, 0.05)
    decile = np.clip(pop.decile[fam] + rng.integers(-1, 2, n), 1, 10)
    ids = [f"{regency.code}{i:012d}" for i in rng.permutation(n) + 1]
    fam_ids = {f: f"{regency.code}K{k:09d}" for k, f in enumerate(np.unique(fam).tolist(), start=1)}
    table = pa.table(
        {
            "id_dtks": pa.array(ids, pa.string()),
            "nik": pa.array(nik, pa.string()),
            "nama": pa.array([x.upper() for x in names], pa.string()),
            "jenis_kelamin": pa.array(
                [
                    None if m else ("P" if f else "L")
                    for m, f in zip(sex_missing.tolist(), female.tolist(), strict=True)
                ],
                pa.string(),
            ),
            "tanggal_lahir": pa.array(
                [None if m else str(b) for m, b in zip(dob_missing.tolist(), birth.tolist(), strict=True)], pa.string()
            ),
            "kode_desa": pa.array(vil_codes[village], pa.string()),
            "alamat": pa.array(_alamat(pop, fam), pa.string()),
            "id_keluarga": pa.array([fam_ids[f] for f in fam.tolist()], pa.string()),
            "desil": pa.array(decile, pa.int8()),
        }
    )
    dead = np.r_[pop.dead[persons], np.zeros(extra, bool)]
    noise = _tags(
        ("nik_missing", missing),
        ("nik_transposed", transposed),
        ("nik_mistyped", mistyped),
        ("name_variant", variant),
        ("sex_missing", sex_missing),
        ("not_in_master", ~in_master),
        ("died", dead),
    )
    true_nik: list[str | None] = [str(x) for x in pop.nik[persons]] + [None] * extra
    return Sectoral(table, ids, true_nik, noise, np.r_[persons, np.full(extra, -1)])


def _alamat(pop: Population, fam: np.ndarray) -> list[str]:
    """DTKS addresses: the street line in capitals with RT/RW in one of the usual formats."""
    rnd = random.Random(len(fam))  # its own stream: the other DTKS columns stay as they were
    return [f"{str(pop.address[f]).upper()} {rtrw_text(int(pop.rt[f]), int(pop.rw[f]), rnd)}" for f in fam.tolist()]


def _stale_village(rng: np.random.Generator, village: np.ndarray, regency: Regency, rate: float) -> np.ndarray:
    """Move `rate` of the rows to the next (or previous) village of the same district: an old address."""
    district = np.array([v.district_index for v in regency.villages] + [-1])
    nxt = np.where(district[village + 1] == district[village], village + 1, village - 1)
    nxt = np.where((nxt >= 0) & (district[np.maximum(nxt, 0)] == district[village]), nxt, village)
    moved: np.ndarray = np.where(rng.random(len(village)) < rate, nxt, village)
    return moved


def generate_bpjs(
    rng: np.random.Generator, pop: Population, regency: Regency, profile: NoiseProfile, rnd: random.Random
) -> Sectoral:
    """bpjs.parquet: PBI-JK members (individuals of poorer families), alive people only."""
    persons, extra = _rows(rng, pop, _BPJS_BY_DECILE, 0.95, profile.bpjs_not_in_master)
    persons = persons[~pop.dead[persons]]
    n = len(persons) + extra
    nik, missing, transposed, mistyped = _nik_column(
        rng, pop, persons, extra, profile.bpjs_nik_present, profile.bpjs_nik_wrong, rnd
    )
    s_names, s_female, s_birth = _strangers(rng, extra)
    names = [str(x) for x in pop.full_name[persons]] + s_names
    in_master = np.r_[np.ones(len(persons), bool), np.zeros(extra, bool)]
    variant = choose(rng, in_master, 0.04, int(in_master.sum()))
    for i in np.flatnonzero(variant).tolist():
        names[i] = spelling_variant(names[i], rnd)
    upper = rng.random(n) < 0.5  # older cards print names in capitals
    names = [x.upper() if u else x for x, u in zip(names, upper.tolist(), strict=True)]
    female = np.r_[pop.female[persons], s_female]
    birth = np.r_[pop.birth_date[persons], s_birth]
    dob_missing = rng.random(n) < 0.02
    sex_missing = rng.random(n) < 0.01
    fam = np.r_[pop.family[persons], rng.integers(0, pop.families, extra)]
    vil_codes = np.array([v.kemendagri_code for v in regency.villages])
    village_missing = rng.random(n) < 0.10
    noka = [f"000{i:010d}" for i in rng.choice(10**9, n, replace=False) + 10**9]
    district_code = np.array([c[2:6] for c in vil_codes])[pop.village[fam]]
    clinic = rng.integers(1, 12, n).tolist()
    faskes = [f"{d}P{k:03d}" for d, k in zip(district_code.tolist(), clinic, strict=True)]
    table = pa.table(
        {
            "noka": pa.array(noka, pa.string()),
            "nik": pa.array(nik, pa.string()),
            "nama_peserta": pa.array(names, pa.string()),
            "tgl_lahir": pa.array(
                np.where(dob_missing, np.datetime64("NaT"), birth).astype("datetime64[D]"),
                pa.date32(),
                mask=dob_missing,
            ),
            "jk": pa.array(
                [
                    None if m else ("2" if f else "1")
                    for m, f in zip(sex_missing.tolist(), female.tolist(), strict=True)
                ],
                pa.string(),
            ),
            "kd_desa": pa.array(vil_codes[pop.village[fam]], pa.string(), mask=village_missing),
            "segmen": pa.array(np.where(rng.random(n) < 0.8, "PBI-APBN", "PBI-APBD"), pa.string()),
            "faskes": pa.array(faskes, pa.string()),
        }
    )
    noise = _tags(
        ("nik_missing", missing),
        ("nik_transposed", transposed),
        ("nik_mistyped", mistyped),
        ("name_variant", variant),
        ("sex_missing", sex_missing),
        ("not_in_master", ~in_master),
    )
    true_nik: list[str | None] = [str(x) for x in pop.nik[persons]] + [None] * extra
    return Sectoral(table, noka, true_nik, noise, np.r_[persons, np.full(extra, -1)])
