"""The Dukcapil-like population master: families on KK cards, vectorised with numpy.

Family sizes follow Indonesia's household-size distribution (mean about 3.6); each family has a head,
usually a wife, children, sometimes an elderly parent or grandchildren. NIKs are built from the
first-registration district, the birth date (women: day + 40) and a serial that is unique per
district and date; KK numbers from the family's district, the card's issue date and a serial.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from faker.providers.address.id_ID import Provider as _FakerAddress

from synthetic.names import sample_names
from synthetic.profile import NoiseProfile
from synthetic.regions import Regency

SNAPSHOT = dt.date(2022, 9, 30)  # the master extract the survey is linked against
_EPOCH = np.datetime64("1970-01-01", "D")

# Household size 1..8 (BPS: about 3.6 persons per household).
_SIZE_P = np.array([0.09, 0.17, 0.22, 0.24, 0.15, 0.08, 0.03, 0.02])

ROLE_HEAD, ROLE_SPOUSE, ROLE_PARENT, ROLE_CHILD, ROLE_GRANDCHILD, ROLE_OTHER = 0, 1, 2, 3, 4, 5
RELIGIONS = np.array(["ISLAM", "KRISTEN", "KATOLIK", "HINDU", "BUDDHA", "KONGHUCU"])
_RELIGION_P = [0.93, 0.035, 0.015, 0.003, 0.015, 0.002]
MARITAL = np.array(["BELUM KAWIN", "KAWIN", "CERAI HIDUP", "CERAI MATI"])
_CITIES = tuple(_FakerAddress.cities)
_STREETS = tuple(_FakerAddress.streets)
STREETS = _STREETS  # street names, for addresses written elsewhere (movers)


@dataclass(frozen=True)
class Population:
    """The master as column arrays (one entry per person) plus family-level arrays.

    Persons are ordered by family; `family[i]` indexes the family arrays.
    """

    nik: np.ndarray  # str
    kk_number: np.ndarray  # str, per person
    full_name: np.ndarray  # object (str)
    female: np.ndarray  # bool
    birth_date: np.ndarray  # datetime64[D]
    birth_place: np.ndarray  # object
    religion: np.ndarray  # str
    marital: np.ndarray  # int index into MARITAL
    role: np.ndarray  # ROLE_*
    relationship: np.ndarray  # str (Dukcapil wording)
    family: np.ndarray  # int
    dead: np.ndarray  # bool
    moved_out: np.ndarray  # bool
    # family level
    family_start: np.ndarray  # first person index of each family
    family_size: np.ndarray
    village: np.ndarray  # index into Regency.villages
    rt: np.ndarray  # int
    rw: np.ndarray  # int
    address: np.ndarray  # object (street line)
    decile: np.ndarray  # welfare decile 1 (poorest) .. 10

    @property
    def persons(self) -> int:
        return len(self.nik)

    @property
    def families(self) -> int:
        return len(self.family_start)


def _family_sizes(rng: np.random.Generator, persons: int) -> np.ndarray:
    sizes = rng.choice(np.arange(1, 9), size=persons // 3 + 16, p=_SIZE_P)
    total = np.cumsum(sizes)
    while total[-1] < persons:  # practically never: the mean size is 3.6
        sizes = np.concatenate([sizes, rng.choice(np.arange(1, 9), size=persons // 3 + 16, p=_SIZE_P)])
        total = np.cumsum(sizes)
    n_fam = int(np.searchsorted(total, persons)) + 1
    sizes = sizes[:n_fam].copy()
    sizes[-1] -= int(total[n_fam - 1]) - persons
    return sizes


def _serials(rng: np.random.Generator, key: np.ndarray) -> np.ndarray:
    """1-based serial within each group of equal keys, in a random order inside the group."""
    perm = rng.permutation(len(key))
    order = perm[np.argsort(key[perm], kind="stable")]
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(key)]))
    serial = np.empty(len(key), dtype=np.int64)
    serial[order] = np.arange(len(key)) - run_start + 1
    if serial.max(initial=0) > 9999:
        raise ValueError("more than 9999 NIK/KK serials for one district and date; use fewer persons")
    return serial


def _ddmmyy(days: np.ndarray, female: np.ndarray | None = None) -> np.ndarray:
    """DDMMYY as an integer (women: day + 40 when `female` is given)."""
    d = days.astype("datetime64[D]")
    years = d.astype("datetime64[Y]")
    months = d.astype("datetime64[M]")
    day = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    yy = (years.astype(np.int64) + 1970) % 100
    if female is not None:
        day = day + 40 * female
    out: np.ndarray = day * 10000 + month * 100 + yy
    return out


def _to_digits(region6: np.ndarray, ddmmyy: np.ndarray, serial: np.ndarray) -> np.ndarray:
    # region6 never starts with 0, so the integer has exactly 16 digits.
    digits: np.ndarray = (region6 * 10**10 + ddmmyy * 10**4 + serial).astype(str)
    return digits


def _ages(
    rng: np.random.Generator, sizes: np.ndarray, role: np.ndarray, family: np.ndarray, has_spouse: np.ndarray
) -> np.ndarray:
    n_fam = len(sizes)
    single = sizes == 1
    head_age = np.clip(rng.normal(48, 14, n_fam), 20, 92)
    young_single = single & (rng.random(n_fam) < 0.55)
    head_age = np.where(young_single, rng.uniform(19, 35, n_fam), head_age)
    head_age = np.where(single & ~young_single, rng.uniform(55, 90, n_fam), head_age)
    spouse_age = np.clip(head_age - rng.normal(4, 4, n_fam), 18, 90)
    mother_age = np.where(has_spouse, spouse_age, head_age)
    n = len(role)
    u = rng.random(n)
    fam_head = head_age[family]
    # The mother was 18-45 when the child was born.
    child_lo = np.clip(mother_age[family] - 45, 0, None)
    child_hi = np.clip(mother_age[family] - 18, 0, None)
    ages = np.select(
        [role == ROLE_HEAD, role == ROLE_SPOUSE, role == ROLE_PARENT, role == ROLE_CHILD],
        [
            fam_head,
            spouse_age[family],
            np.clip(fam_head + rng.normal(27, 4, n), fam_head + 17, 99),
            child_lo + (child_hi - child_lo) * u,
        ],
        default=np.clip(fam_head - 40, 0, 18) * u,  # grandchildren
    )
    whole: np.ndarray = np.floor(ages).astype(np.int64)
    return whole


def generate_population(
    rng: np.random.Generator, regency: Regency, persons: int, profile: NoiseProfile, neighbour_districts: list[str]
) -> Population:
    """Build the master for `persons` people in `regency` (see the module docstring)."""
    if persons < 1:
        raise ValueError("persons must be at least 1")
    sizes = _family_sizes(rng, persons)
    n_fam = len(sizes)
    family_start = np.r_[0, np.cumsum(sizes)[:-1]]
    family = np.repeat(np.arange(n_fam), sizes)
    pos = np.arange(persons) - family_start[family]

    female_head = np.where(sizes == 1, rng.random(n_fam) < 0.4, rng.random(n_fam) < 0.12)
    has_spouse = (sizes >= 2) & ~female_head & (rng.random(n_fam) < 0.93)
    has_parent = (sizes - 1 - has_spouse >= 1) & (rng.random(n_fam) < 0.16)
    sp, pa_ = has_spouse[family], has_parent[family]
    role = np.full(persons, ROLE_CHILD)
    role[pos == 0] = ROLE_HEAD
    role[(pos == 1) & sp] = ROLE_SPOUSE
    role[(pos == 1 + sp) & pa_ & (pos > 0)] = ROLE_PARENT
    ages = _ages(rng, sizes, role, family, has_spouse)
    head_age = ages[family_start][family]
    role[(role == ROLE_CHILD) & (head_age >= 55) & (rng.random(persons) < 0.35)] = ROLE_GRANDCHILD
    ages = np.where(
        role == ROLE_GRANDCHILD, np.floor(np.clip(head_age - 40, 0, 18) * rng.random(persons)), ages
    ).astype(np.int64)
    # Other relatives living on the KK (a nephew, a younger sibling of the head): FAMILI LAIN.
    role[(role == ROLE_CHILD) & (rng.random(persons) < 0.03)] = ROLE_OTHER
    ages = np.where(role == ROLE_OTHER, rng.integers(3, 40, persons), ages)

    female = np.select(
        [role == ROLE_HEAD, role == ROLE_SPOUSE, role == ROLE_PARENT],
        [female_head[family], np.ones(persons, bool), rng.random(persons) < 0.7],
        default=rng.random(persons) < 0.49,
    ).astype(bool)

    snapshot = np.datetime64(SNAPSHOT.isoformat(), "D")
    birth = snapshot - (ages * 365.2425 + rng.random(persons) * 364).astype(np.int64)
    birth_year = birth.astype("datetime64[Y]")
    old = birth_year.astype(np.int64) + 1970 < 1970
    placeholder = old & (rng.random(persons) < profile.master_placeholder_dob)
    july = (birth_year.astype("datetime64[M]") + 6).astype("datetime64[D]")  # 1 July
    dec31 = (birth_year + 1).astype("datetime64[D]") - 1
    birth = np.where(placeholder, np.where(rng.random(persons) < 0.5, july, dec31), birth)

    relationship = np.select(
        [role == ROLE_HEAD, role == ROLE_SPOUSE, role == ROLE_PARENT, role == ROLE_GRANDCHILD, role == ROLE_OTHER],
        ["KEPALA KELUARGA", "ISTRI", np.where(rng.random(persons) < 0.5, "ORANG TUA", "MERTUA"), "CUCU", "FAMILI LAIN"],
        default="ANAK",
    )
    marital = np.zeros(persons, np.int64)
    u = rng.random(persons)
    lone_head = (role == ROLE_HEAD) & ~sp
    marital[(role == ROLE_HEAD) & sp] = 1
    marital[role == ROLE_SPOUSE] = 1
    marital[lone_head & (ages >= 30)] = np.where(u < 0.6, 3, 2)[lone_head & (ages >= 30)]
    marital[lone_head & (ages < 30) & (u < 0.3)] = 2
    marital[role == ROLE_PARENT] = np.where(u < 0.85, 3, 1)[role == ROLE_PARENT]
    marital[np.isin(role, [ROLE_CHILD, ROLE_OTHER]) & (ages >= 30) & (u < 0.2)] = 2

    religion = RELIGIONS[rng.choice(len(RELIGIONS), n_fam, p=_RELIGION_P)][family]
    names = np.array(sample_names(rng, female, religion == "ISLAM"), dtype=object)

    # Villages of different sizes; a village's families spread over its SLS (one RT/RW each).
    n_vil = len(regency.villages)
    weights = rng.lognormal(0, 0.5, n_vil)
    village = rng.choice(n_vil, n_fam, p=weights / weights.sum())
    per_village = np.bincount(village, minlength=n_vil)
    n_sls = np.maximum(1, np.ceil(per_village / 30)).astype(np.int64)
    sls = np.floor(rng.random(n_fam) * n_sls[village]).astype(np.int64)
    rt, rw = sls % 8 + 1, (sls // 8) % 99 + 1
    district_of_village = np.array([int(v.kemendagri_code[:6]) for v in regency.villages])
    fam_district = district_of_village[village]
    street_kind = rng.random(n_fam)
    street = rng.integers(0, len(_STREETS), n_fam).tolist()
    number = rng.integers(1, 120, n_fam).tolist()
    address = np.array(
        [
            f"Kp. {regency.villages[v].name}"
            if k < 0.35
            else (f"Gg. {_STREETS[s]} No. {no}" if k < 0.55 else f"Jl. {_STREETS[s]} No. {no}")
            for k, s, no, v in zip(street_kind.tolist(), street, number, village.tolist(), strict=True)
        ],
        dtype=object,
    )

    # NIK: first registered in the family's district, or (in-movers) elsewhere in the province.
    elsewhere = (rng.random(persons) < profile.born_elsewhere) & (ages >= 17)
    neighbours = np.array([int(c) for c in neighbour_districts])
    nik_district = np.where(elsewhere, neighbours[rng.integers(0, len(neighbours), persons)], fam_district[family])
    nik_date = _ddmmyy(birth, female)
    nik = _to_digits(nik_district, nik_date, _serials(rng, nik_district * 10**6 + nik_date))

    # KK: issued in the family's district between 2008 and the snapshot.
    first_issue = np.datetime64("2008-01-01", "D")
    issue = first_issue + rng.integers(0, (snapshot - first_issue).astype(int), n_fam)
    kk_date = _ddmmyy(issue)
    kk = _to_digits(fam_district, kk_date, _serials(rng, fam_district * 10**6 + kk_date))

    birth_place = np.where(
        (rng.random(persons) < 0.75) & ~elsewhere,
        regency.name.removeprefix("Kabupaten ").removeprefix("Kota "),
        np.array(_CITIES, dtype=object)[rng.integers(0, len(_CITIES), persons)],
    )

    # Deaths weighted towards the old; whole families moved out of the regency.
    hazard = np.exp(ages / 12.0)
    p_dead = np.clip(profile.master_dead * hazard / hazard.mean(), 0, 0.9)
    dead = rng.random(persons) < p_dead
    moved_out = (rng.random(n_fam) < profile.master_moved_out)[family]

    # Welfare: bigger families and female-headed ones are poorer on average.
    score = rng.normal(0, 1, n_fam) - 0.25 * (sizes - 3.6) - 0.4 * female_head
    decile = (np.argsort(np.argsort(score, kind="stable"), kind="stable") * 10 // n_fam + 1).astype(np.int64)

    return Population(
        nik=nik,
        kk_number=kk[family],
        full_name=names,
        female=female,
        birth_date=birth,
        birth_place=birth_place,
        religion=religion,
        marital=marital,
        role=role,
        relationship=relationship,
        family=family,
        dead=dead,
        moved_out=moved_out,
        family_start=family_start,
        family_size=sizes,
        village=village,
        rt=rt,
        rw=rw,
        address=address,
        decile=decile,
    )


def population_table(pop: Population, regency: Regency) -> pa.Table:
    """population.parquet in the column order of docs/data-model.md."""
    vil_codes = np.array([v.kemendagri_code for v in regency.villages])
    village = vil_codes[pop.village][pop.family]
    return pa.table(
        {
            "nik": pa.array(pop.nik, pa.string()),
            "kk_number": pa.array(pop.kk_number, pa.string()),
            "full_name": pa.array(pop.full_name, pa.string()),
            "sex": pa.array(np.where(pop.female, "F", "M"), pa.string()),
            "birth_place": pa.array(pop.birth_place, pa.string()),
            "birth_date": pa.array(pop.birth_date, pa.date32()),
            "religion": pa.array(pop.religion, pa.string()),
            "marital_status": pa.array(MARITAL[pop.marital], pa.string()),
            "relationship": pa.array(pop.relationship, pa.string()),
            "village_code": pa.array(village, pa.string()),
            "district_code": pa.array(np.array([c[:6] for c in vil_codes])[pop.village][pop.family], pa.string()),
            "address": pa.array(pop.address[pop.family], pa.string()),
            "rt": pa.array(np.char.zfill(pop.rt[pop.family].astype(str), 3), pa.string()),
            "rw": pa.array(np.char.zfill(pop.rw[pop.family].astype(str), 3), pa.string()),
            "status": pa.array(np.where(pop.dead, "dead", "alive"), pa.string()),
            "moved_out": pa.array(pop.moved_out, pa.bool_()),
        }
    )
