"""FamilySubmission v1 messages with field noise, in streaming order, and their ground truth.

Each enumerated family gives one submission (revision 1); some are re-submitted later as revision 2
(same family key, fresh noise), and some are enumerated twice under another family key (another
building serial in the same SLS). Noise is drawn independently for every submission.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthetic.extra_noise import survey_addresses, token_noise, year_off
from synthetic.items import family_items, member_items
from synthetic.members import BaseMembers
from synthetic.noise import birth_date_noise, choose, mistype_nik, name_noise, transpose_nik
from synthetic.population import STREETS, Population
from synthetic.profile import NoiseProfile
from synthetic.regions import Regency

_FIELDWORK_START = np.datetime64("2022-10-15T00:00", "m")  # local time (+07:00)
_FIELDWORK_DAYS = 31
ORIGINAL, REVISION, DUPLICATE = 0, 1, 2


@dataclass(frozen=True)
class MemberTruth:
    """Truth rows for submitted members, in streaming order."""

    record_id: list[str]
    member_key: list[str]
    true_nik: list[str | None]
    noise: list[str]


def _tag_rows(n: int, pairs: list[tuple[str, np.ndarray]]) -> list[str]:
    tags = [""] * n
    for tag, mask in pairs:
        for i in np.flatnonzero(mask).tolist():
            tags[i] = f"{tags[i]}|{tag}" if tags[i] else tag
    return tags


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    return (
        y.astype(np.int64) + 1970,
        (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
        (d - m.astype("datetime64[D]")).astype(np.int64) + 1,
    )


def _wrong_niks(
    rng: np.random.Generator,
    rows: np.ndarray,
    true_nik: np.ndarray,
    base: BaseMembers,
    inst_of_row: np.ndarray,
    within: np.ndarray,
    inst_start: np.ndarray,
    n_in: np.ndarray,
    profile: NoiseProfile,
    rnd: random.Random,
) -> tuple[list[str | None], dict[str, np.ndarray]]:
    """Submitted NIKs and the NIK noise masks (missing / family member / transposed / mistyped)."""
    m = len(rows)
    in_master = base.person[rows] >= 0
    u = rng.random(m)
    edges = np.cumsum(
        [
            profile.nik_missing,
            profile.nik_family_member,
            profile.nik_transposed,
            profile.nik_mistyped,
            profile.nik_relative,
        ]
    )
    band = np.searchsorted(edges, u, side="right")
    missing = in_master & (band == 0)
    family_member = in_master & (band == 1) & (n_in >= 2)
    transposed = in_master & (band == 2)
    mistyped = in_master & ((band == 3) | ((band == 1) & (n_in < 2)))
    relative = in_master & (band == 4)  # filled in by the caller (a person of another family)
    shift = 1 + np.floor(rng.random(m) * np.maximum(n_in - 1, 1)).astype(np.int64)
    other = inst_start[inst_of_row] + (within + shift) % np.maximum(n_in, 1)
    nik: list[str | None] = [str(x) if p else None for x, p in zip(true_nik.tolist(), in_master.tolist(), strict=True)]
    for i in np.flatnonzero(~in_master).tolist():
        nik[i] = base.outside_nik[rows[i]]
    for i in np.flatnonzero(missing).tolist():
        nik[i] = None
    for i in np.flatnonzero(family_member).tolist():
        nik[i] = str(true_nik[other[i]])
    for i in np.flatnonzero(transposed).tolist():
        nik[i] = transpose_nik(str(true_nik[i]), rnd)
    invalid = mistyped & (rng.random(m) < profile.nik_invalid_share)
    for i in np.flatnonzero(mistyped).tolist():
        nik[i] = str(true_nik[i])[:12] + "0000" if invalid[i] else mistype_nik(str(true_nik[i]), rnd)
    masks = {
        "nik_missing": missing,
        "nik_family_member": family_member,
        "nik_transposed": transposed,
        "nik_mistyped": mistyped,
        "nik_relative": relative,
    }
    return nik, masks


def _relatives_niks(rng: np.random.Generator, pop: Population, person: np.ndarray, rows: np.ndarray) -> list[str]:
    """For each row: the NIK of a master person of ANOTHER family in the same village (a parent or a
    sibling with their own KK nearby)."""
    village_of = pop.village[pop.family]
    order = np.argsort(village_of, kind="stable")
    sorted_v = village_of[order]
    out: list[str] = []
    for i in rows.tolist():
        p = int(person[i])
        lo, hi = np.searchsorted(sorted_v, village_of[p], "left"), np.searchsorted(sorted_v, village_of[p], "right")
        pick = p
        for _ in range(20):
            pick = int(order[lo + int(rng.integers(hi - lo))])
            if pop.family[pick] != pop.family[p]:
                break
        out.append(str(pop.nik[pick]))
    return out


def build_submissions(
    rng: np.random.Generator,
    pop: Population,
    base: BaseMembers,
    regency: Regency,
    profile: NoiseProfile,
    bpjs_person: np.ndarray,
    rnd: random.Random,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Iterator[str], MemberTruth, int, int]:
    """Return (JSON lines iterator, member truth, submission count, member record count)."""
    n_e = len(base.families)
    everyone = np.ones(n_e, bool)
    revised = np.flatnonzero(choose(rng, everyone, profile.revised_family, n_e))
    duplicated = np.flatnonzero(choose(rng, everyone, profile.duplicate_family, n_e))
    inst_e = np.r_[np.arange(n_e), revised, duplicated]
    kind = np.r_[np.full(n_e, ORIGINAL), np.full(len(revised), REVISION), np.full(len(duplicated), DUPLICATE)]
    n_inst = len(inst_e)
    fam = base.families[inst_e]

    # When: fieldwork days 07:00-18:00; revisions 1-20 days after their original.
    minute = rng.integers(0, _FIELDWORK_DAYS, n_inst) * 1440 + rng.integers(7 * 60, 18 * 60, n_inst)
    minute[kind == REVISION] = (
        minute[:n_e][revised] + rng.integers(1, 21, len(revised)) * 1440 + rng.integers(-120, 120, len(revised))
    )
    when = _FIELDWORK_START + minute.astype("timedelta64[m]")
    order = np.lexsort((np.arange(n_inst), when))

    # Family key: BPS village + SLS (RW, RT) + building serial within the SLS (duplicates get new ones).
    sls_id = (pop.village[fam] * 100 + pop.rw[fam]) * 100 + pop.rt[fam]
    keyed = kind != REVISION
    building = np.zeros(n_inst, np.int64)
    idx = np.flatnonzero(keyed)
    k_order = idx[np.lexsort((rng.random(len(idx)), sls_id[idx]))]  # random building order in an SLS
    s_sorted = sls_id[k_order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    building[k_order] = np.arange(len(k_order)) - np.repeat(starts, np.diff(np.r_[starts, len(k_order)])) + 1
    if building.max(initial=0) > 999:
        raise ValueError("more than 999 buildings in one SLS; the regency is too small for this many persons")
    building[kind == REVISION] = building[:n_e][revised]
    seq = np.zeros(n_inst, np.int64)
    first = order[kind[order] != REVISION]
    seq[first] = np.arange(1, len(first) + 1)
    seq[kind == REVISION] = seq[:n_e][revised]
    width = max(7, len(str(len(first))))

    # Member rows of every submission.
    size = base.size[inst_e]
    inst_start = np.r_[0, np.cumsum(size)[:-1]]
    inst_of_row = np.repeat(np.arange(n_inst), size)
    within = np.arange(int(size.sum())) - inst_start[inst_of_row]
    rows = base.start[inst_e][inst_of_row] + within
    m = len(rows)
    person = base.person[rows]
    in_master = person >= 0
    n_master = int(in_master.sum())
    true_nik = pop.nik[np.where(in_master, person, 0)].astype(object)
    true_nik[~in_master] = None
    n_in = base.in_master_count[inst_e][inst_of_row]
    nik, nik_masks = _wrong_niks(rng, rows, true_nik, base, inst_of_row, within, inst_start, n_in, profile, rnd)
    # The harder noise kinds draw from their own streams: a world without them stays as it was.
    xrng = rng.spawn(1)[0]
    xrnd = random.Random(int(xrng.integers(2**62)))
    relative_rows = np.flatnonzero(nik_masks["nik_relative"])
    for i, other in zip(relative_rows.tolist(), _relatives_niks(xrng, pop, person, relative_rows), strict=True):
        nik[i] = other

    by, bm, bd = _ymd(base.birth[rows])
    swapped, year_only, placeholder = birth_date_noise(
        rng, bd, bm, in_master, n_master, profile.dob_swapped, profile.dob_year_only, profile.dob_placeholder
    )
    enum_day = when[inst_of_row].astype("datetime64[D]")
    ey, em, ed = _ymd(enum_day)
    age = ey - by - ((em * 100 + ed) < (bm * 100 + bd))
    day = np.where(swapped, bm, np.where(placeholder, np.where(rng.random(m) < 0.5, 1, 31), bd))
    month = np.where(swapped, bd, np.where(placeholder, np.where(day == 1, 7, 12), bm))
    by_written, year_off_mask = year_off(
        xrng, by, bm, bd, in_master & ~swapped & ~year_only & ~placeholder, n_master, profile.dob_year_off
    )
    female = base.female[rows]
    names = [base.name[r] for r in rows.tolist()]
    names, token_masks = token_noise(names, in_master, xrng, n_master, profile, xrnd)
    names, variant, honorific, case = name_noise(
        names,
        female.tolist(),
        in_master & (age >= 22),
        rng,
        n_master,
        profile.name_variant,
        profile.name_honorific,
        profile.name_case_spacing,
        rnd,
    )
    sex_missing = choose(rng, in_master, profile.sex_missing, n_master)
    presence = base.presence[rows]
    row_kind = kind[inst_of_row]
    new_street = [
        f"Jl. {STREETS[int(k)]} No. {int(no)}"
        for k, no in zip(xrng.integers(0, len(STREETS), n_inst), xrng.integers(1, 120, n_inst), strict=True)
    ]
    addresses = survey_addresses(
        [str(pop.address[f]) for f in fam.tolist()],
        pop.rt[fam].tolist(),
        pop.rw[fam].tolist(),
        xrng,
        profile,
        new_street,
        xrnd,
    )
    tags = _tag_rows(
        m,
        [
            *nik_masks.items(),
            ("name_variant", variant),
            ("name_honorific", honorific),
            ("name_case_spacing", case),
            ("dob_swapped", swapped),
            ("dob_year_only", year_only),
            ("dob_placeholder", placeholder),
            ("sex_missing", sex_missing),
            ("not_in_master", ~in_master),
            ("duplicate_enumeration", row_kind == DUPLICATE),
            ("revision", row_kind == REVISION),
            ("died", presence == 2),
            ("moved", presence == 3),
            *token_masks.items(),
            ("dob_year_off", year_off_mask),
            *((tag, mask[inst_of_row]) for tag, mask in addresses.masks.items()),
        ],
    )

    decile = pop.decile[fam]
    bpjs_member = np.zeros(m, bool)
    bpjs_member[in_master] = bpjs_person[person[in_master]]
    m_items = member_items(rng, age, female, decile[inst_of_row], bpjs_member)
    f_items = family_items(rng, pop.decile[base.families])
    kk_missing = rng.random(n_inst) < profile.kk_missing
    kk_code = rng.choice([0, 1, 2], n_inst, p=[0.95, 0.03, 0.02])

    vil_bps = [v.bps_code for v in regency.villages]
    cols = {
        "nik": nik,
        "name": names,
        "presence": presence.tolist(),
        "sex": np.where(sex_missing, 0, np.where(female, 2, 1)).tolist(),
        "day": np.where(year_only, 0, day).tolist(),
        "month": np.where(year_only, 0, month).tolist(),
        "year": by_written.tolist(),
        "age": age.tolist(),
        "marital": base.marital[rows].tolist(),
        "relationship": base.relationship[rows].tolist(),
    }
    family_keys = [
        f"{vil_bps[v]}{rw:02d}{rt:02d}00{b:03d}001"
        for v, rw, rt, b in zip(
            pop.village[fam].tolist(), pop.rw[fam].tolist(), pop.rt[fam].tolist(), building.tolist(), strict=True
        )
    ]
    sub_ids = [
        f"S-{regency.code}-{s:0{width}d}-r{2 if k == REVISION else 1}"
        for s, k in zip(seq.tolist(), kind.tolist(), strict=True)
    ]
    record_id: list[str] = []
    member_key: list[str] = []
    truth_nik: list[str | None] = []
    noise: list[str] = []
    start_l, size_l = inst_start.tolist(), size.tolist()
    true_l = true_nik.tolist()
    for i in order.tolist():
        for j in range(start_l[i], start_l[i] + size_l[i]):
            serial = j - start_l[i] + 1
            record_id.append(f"{sub_ids[i]}/{serial}")
            member_key.append(f"{family_keys[i]}-{serial:02d}")
            truth_nik.append(true_l[j])
            noise.append(tags[j])
    truth = MemberTruth(record_id, member_key, truth_nik, noise)

    def lines() -> Iterator[str]:
        when_s = [str(w) for w in when.tolist()]
        kk_all = pop.kk_number[pop.family_start[fam]].tolist()
        kind_l, e_l = kind.tolist(), inst_e.tolist()
        for done, i in enumerate(order.tolist(), start=1):
            key = family_keys[i]
            members = [_member(cols, m_items, j, j - start_l[i] + 1) for j in range(start_l[i], start_l[i] + size_l[i])]
            housing, programmes, assets = f_items[e_l[i]]
            doc: dict[str, Any] = {
                "schema_version": "1",
                "submission_id": sub_ids[i],
                "revision": 2 if kind_l[i] == REVISION else 1,
                "enumerator_code": f"E{key[:10]}",
                "enumerated_at": when_s[i][:16].replace(" ", "T") + ":00+07:00",
                "family_key": {
                    "province": key[0:2],
                    "regency": key[2:4],
                    "district": key[4:7],
                    "village": key[7:10],
                    "sls": key[10:14],
                    "sub_sls": key[14:16],
                    "building_serial": key[16:19],
                    "family_serial": key[19:22],
                },
                "address": {"street": addresses.street[i], "rt": addresses.rt[i], "rw": addresses.rw[i]},
                "kk_number": None if kk_missing[i] else kk_all[i],
                "kk_code": int(kk_code[i]),
                "head_name": members[0]["name"],
                "member_count": sum(1 for mb in members if mb["presence"] in (1, 4)),
                "housing": housing,
                "programmes": programmes,
                "assets": assets,
                "members": members,
            }
            if progress is not None and done % 5000 == 0:
                progress(done, n_inst)
            yield json.dumps(doc, separators=(",", ":"))

    return lines(), truth, n_inst, m


def _member(
    cols: dict[str, list[Any]], items: list[tuple[Any, Any, Any, dict[str, bool]]], j: int, serial: int
) -> dict[str, Any]:
    education, work, disability, insurance = items[j]
    sex = cols["sex"][j]
    day, month = cols["day"][j], cols["month"][j]
    return {
        "serial": serial,
        "name": cols["name"][j],
        "nik": cols["nik"][j],
        "presence": cols["presence"][j],
        "sex": sex or None,
        "birth_date": {"day": day or None, "month": month or None, "year": cols["year"][j]},
        "age": cols["age"][j],
        "marital_status": cols["marital"][j],
        "relationship": cols["relationship"][j],
        "education": education,
        "work": work,
        "disability": disability,
        "insurance": insurance,
    }
