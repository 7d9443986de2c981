"""Who each enumerated family lists: its living master members plus members not in the master.

The result is one "base" row per listed person, grouped by family with master members first (so a
family's master members are contiguous, which the family-member NIK noise relies on). Events the
survey reports (died, moved since the snapshot) belong to the person and repeat in every submission
of the family.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from synthetic.names import sample_names
from synthetic.noise import choose
from synthetic.population import (
    ROLE_CHILD,
    ROLE_GRANDCHILD,
    ROLE_HEAD,
    ROLE_OTHER,
    ROLE_PARENT,
    ROLE_SPOUSE,
    SNAPSHOT,
    Population,
)
from synthetic.profile import NoiseProfile

# Questionnaire relationship codes (item 409) for the master roles.
_RELATIONSHIP_CODE = np.zeros(6, np.int64)
_RELATIONSHIP_CODE[[ROLE_HEAD, ROLE_SPOUSE, ROLE_CHILD, ROLE_GRANDCHILD, ROLE_PARENT, ROLE_OTHER]] = [1, 2, 3, 5, 6, 8]


@dataclass(frozen=True)
class BaseMembers:
    """Listed persons of the enumerated families (one row each), grouped by family."""

    families: np.ndarray  # enumerated family ids, in order
    start: np.ndarray  # first base row of each enumerated family
    size: np.ndarray  # rows per enumerated family
    in_master_count: np.ndarray  # master members per enumerated family (they come first)
    person: np.ndarray  # master person index, -1 for members not in the master
    family: np.ndarray  # family id per row
    female: np.ndarray
    birth: np.ndarray  # datetime64[D]
    name: list[str]
    relationship: np.ndarray  # item 409 code
    marital: np.ndarray  # item 408 code
    presence: np.ndarray  # item 404 code
    newborn: np.ndarray  # bool, not-in-master babies
    outside_nik: list[str | None]  # a valid NIK from elsewhere for some unregistered members

    @property
    def rows(self) -> int:
        return len(self.person)


def _outside_niks(
    rng: np.random.Generator, female: np.ndarray, birth: np.ndarray, neighbour_districts: list[str], taken: set[str]
) -> list[str]:
    """Valid NIKs issued outside the regency (serials 9000+), never equal to a master NIK."""
    out: list[str] = []
    for f, b in zip(female.tolist(), birth.tolist(), strict=True):
        while True:
            district = neighbour_districts[int(rng.integers(len(neighbour_districts)))]
            serial = int(rng.integers(9000, 10000))
            nik = f"{district}{b.day + 40 * f:02d}{b.month:02d}{b.year % 100:02d}{serial}"
            if nik not in taken:
                break
        out.append(nik)
    return out


def list_members(
    rng: np.random.Generator, pop: Population, profile: NoiseProfile, neighbour_districts: list[str]
) -> BaseMembers:
    """Choose the enumerated families and build their listed members (see the module docstring)."""
    alive = ~pop.dead
    alive_per_family = np.bincount(pop.family, weights=alive, minlength=pop.families).astype(np.int64)
    fam_moved = pop.moved_out[pop.family_start]
    enumerated = np.flatnonzero(
        ~fam_moved & (alive_per_family > 0) & (rng.random(pop.families) < profile.family_coverage)
    )
    is_enum = np.zeros(pop.families, bool)
    is_enum[enumerated] = True
    listed = np.flatnonzero(is_enum[pop.family] & alive)

    # New members, spread over the enumerated families.
    n_new = int(round(len(listed) * profile.not_in_master / max(1e-9, 1 - profile.not_in_master)))
    new_family = np.sort(rng.choice(enumerated, n_new)) if n_new else np.zeros(0, np.int64)
    newborn = rng.random(n_new) < profile.newborn_share
    new_female = rng.random(n_new) < 0.5
    snap = np.datetime64(SNAPSHOT.isoformat(), "D")
    new_birth = np.where(
        newborn, snap + 1 + rng.integers(0, 14, n_new), snap - (rng.uniform(16, 70, n_new) * 365.25).astype(np.int64)
    )
    head_age = (snap - pop.birth_date[pop.family_start[new_family]]).astype(np.int64) / 365.25 if n_new else np.zeros(0)
    kind = rng.random(n_new)
    new_rel = np.where(newborn, np.where(head_age >= 45, 5, 3), np.where(kind < 0.4, 4, np.where(kind < 0.55, 7, 8)))
    new_marital = np.where(newborn, 1, np.where(new_rel == 4, 2, np.where(kind < 0.8, 1, 2)))
    new_names = sample_names(rng, new_female, pop.religion[pop.family_start[new_family]] == "ISLAM")
    with_nik = ~newborn & (rng.random(n_new) < 0.2)
    taken = set(pop.nik.tolist()) if with_nik.any() else set()
    idx_nik = np.flatnonzero(with_nik)
    outside = _outside_niks(rng, new_female[idx_nik], new_birth[idx_nik].astype(dt.date), neighbour_districts, taken)
    new_nik: list[str | None] = [None] * n_new
    for i, nik in zip(idx_nik.tolist(), outside, strict=True):
        new_nik[i] = nik

    # Order: by family, master members first (in KK order), then the new members.
    fam_all = np.r_[pop.family[listed], new_family]
    is_new = np.r_[np.zeros(len(listed), bool), np.ones(n_new, bool)]
    order = np.lexsort((np.arange(len(fam_all)), is_new, fam_all))
    person = np.r_[listed, np.full(n_new, -1)][order]
    family = fam_all[order]
    master = person >= 0
    p = np.where(master, person, 0)
    new_idx = np.where(master, 0, order - len(listed))

    def pick(from_master: np.ndarray, from_new: np.ndarray) -> np.ndarray:
        if len(from_new) == 0:  # no new members: every row is a master row
            return from_master
        return np.where(master, from_master, from_new[new_idx])

    female = pick(pop.female[p], new_female)
    birth = pick(pop.birth_date[p], new_birth.astype("datetime64[D]"))
    rel_master = _RELATIONSHIP_CODE[pop.role[p]]
    relationship = pick(rel_master, new_rel)
    marital = pick(pop.marital[p] + 1, new_marital)
    names_master = pop.full_name[p]
    name = [str(names_master[i]) if m else new_names[int(new_idx[i])] for i, m in enumerate(master.tolist())]
    newborn_row = pick(np.zeros(len(p), bool), newborn)
    outside_nik: list[str | None] = [None if m else new_nik[int(new_idx[i])] for i, m in enumerate(master.tolist())]

    size = np.bincount(np.searchsorted(enumerated, family), minlength=len(enumerated))
    start = np.r_[0, np.cumsum(size)[:-1]]
    # A family whose head died is enumerated with its first living member as the head.
    relationship = relationship.copy()
    relationship[start] = 1

    # Reported events: died or moved since the snapshot (never the head, who answers).
    n_master = int(master.sum())
    not_head = master & (relationship != 1)
    died = choose(rng, not_head, profile.died, n_master)
    moved = choose(rng, not_head & ~died, profile.moved, n_master)
    presence = np.where(~master, 4, np.where(died, 2, np.where(moved, 3, 1)))

    in_master_count = np.bincount(np.searchsorted(enumerated, family[master]), minlength=len(enumerated))
    return BaseMembers(
        families=enumerated,
        start=start,
        size=size,
        in_master_count=in_master_count,
        person=person,
        family=family,
        female=female.astype(bool),
        birth=birth.astype("datetime64[D]"),
        name=name,
        relationship=relationship.astype(np.int64),
        marital=marital.astype(np.int64),
        presence=presence.astype(np.int64),
        newborn=newborn_row.astype(bool),
        outside_nik=outside_nik,
    )
