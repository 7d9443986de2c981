"""Questionnaire items that do not drive linkage: housing, programmes, assets, and member items.

Values are drawn per family / member with a plausible dependence on the welfare decile and age, in the
code ranges of contracts/codes.py. They are pre-computed as Python lists so that building the JSON
stays a cheap loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _code(
    rng: np.random.Generator, n: int, poor: np.ndarray, rich_codes: list[int], poor_codes: list[int]
) -> np.ndarray:
    """A code from the richer or the poorer set, depending on the family's poverty."""
    rich = rng.choice(rich_codes, n)
    poorer = rng.choice(poor_codes, n)
    return np.where(rng.random(n) < poor, poorer, rich)


def family_items(
    rng: np.random.Generator, decile: np.ndarray
) -> list[tuple[dict[str, Any], dict[str, bool], dict[str, bool]]]:
    """(housing, programmes, assets) per family; `decile` 1 is the poorest."""
    n = len(decile)
    poor = np.clip((10 - decile) / 10, 0.05, 0.9)
    housing = {
        "tenure": _code(rng, n, poor * 0.5, [1, 1, 1, 2, 3], [1, 3, 4]),
        "floor_area_m2": np.clip(rng.normal(20 + 8 * decile, 12), 9, 400).astype(np.int64),
        "floor_material": _code(rng, n, poor, [2, 2, 4, 1], [6, 5, 8]),
        "wall_material": _code(rng, n, poor, [1], [1, 2, 3, 4]),
        "roof_material": _code(rng, n, poor, [2, 1, 3], [3, 4, 2]),
        "water_source": _code(rng, n, poor, [2, 3, 5], [5, 6, 7, 2]),
        "electricity": _code(rng, n, poor * 0.3, [1], [1, 2]),
        "cooking_fuel": _code(rng, n, poor, [2, 3, 1], [3, 8]),
        "toilet": _code(rng, n, poor * 0.4, [1], [2, 3, 5]),
    }
    programme_p = {
        "sembako": np.where(decile <= 4, 0.6, 0.03),
        "pkh": np.where(decile <= 3, 0.5, 0.02),
        "blt_dana_desa": np.where(decile <= 2, 0.3, 0.01),
        "electricity_subsidy": np.where(decile <= 5, 0.5, 0.05),
        "regional_aid": np.full(n, 0.05),
    }
    asset_p = {
        "refrigerator": 0.25 + 0.07 * decile,
        "motorcycle": 0.45 + 0.05 * decile,
        "car": 0.002 * decile**2,
        "smartphone": 0.55 + 0.045 * decile,
        "land_owned": np.full(n, 0.3),
        "internet_access": 0.3 + 0.06 * decile,
        "bank_account": 0.15 + 0.08 * decile,
    }
    h_lists = {k: v.tolist() for k, v in housing.items()}
    p_lists = {k: (rng.random(n) < v).tolist() for k, v in programme_p.items()}
    a_lists = {k: (rng.random(n) < v).tolist() for k, v in asset_p.items()}
    return [
        (
            {k: h_lists[k][i] for k in h_lists},
            {k: p_lists[k][i] for k in p_lists},
            {k: a_lists[k][i] for k in a_lists},
        )
        for i in range(n)
    ]


def member_items(
    rng: np.random.Generator, age: np.ndarray, female: np.ndarray, decile: np.ndarray, bpjs_pbi: np.ndarray
) -> list[tuple[Any, Any, Any, dict[str, bool]]]:
    """(education, work, disability, insurance) per member; None where the item is not asked."""
    n = len(age)
    u = rng.random(n)
    level_by_age = np.select([age < 13, age < 16, age < 19], [1, 2, 3], default=0)
    adult_level = np.clip(np.floor(rng.normal(1.5 + 0.35 * decile, 1.3, n)), 0, 7).astype(np.int64)
    in_school = (age >= 5) & (age <= 18) & (u < 0.9)
    participation = np.where(age < 5, 0, np.where(in_school, 2, np.where(adult_level == 0, 1, 3)))
    level = np.where(in_school, level_by_age, adult_level)
    level = np.where(participation == 1, 0, level)
    worked = (age >= 15) & (rng.random(n) < np.where(female, 0.45, 0.75)) & (age < 75)
    sector = rng.choice([1, 3, 5, 6, 7, 8, 11, 12], n)
    status = rng.choice([1, 2, 4, 6, 7], n)
    difficulty = np.where(rng.random((3, n)) < np.clip((age - 50) / 150, 0.01, 0.3), 2, 1)
    difficulty = np.where(rng.random((3, n)) < 0.01, 3, difficulty)
    non_pbi = ~bpjs_pbi & (rng.random(n) < 0.2 + 0.05 * decile)
    pip = (age >= 6) & (age <= 21) & (decile <= 4) & (rng.random(n) < 0.5)
    out: list[tuple[Any, Any, Any, dict[str, bool]]] = []
    cols = zip(
        age.tolist(),
        participation.tolist(),
        level.tolist(),
        worked.tolist(),
        sector.tolist(),
        status.tolist(),
        difficulty[0].tolist(),
        difficulty[1].tolist(),
        difficulty[2].tolist(),
        bpjs_pbi.tolist(),
        non_pbi.tolist(),
        pip.tolist(),
        strict=True,
    )
    for a, part, lvl, w, sec, st, see, hear, walk, pbi, npbi, p in cols:
        education = None if a < 5 else {"school_participation": part, "highest_level": lvl}
        work = (
            None
            if a < 10
            else {"worked_last_week": w, "main_sector": sec if w else None, "employment_status": st if w else None}
        )
        disability = None if a < 2 else {"seeing": see, "hearing": hear, "walking": walk}
        out.append((education, work, disability, {"bpjs_pbi": pbi, "bpjs_non_pbi": npbi, "pip": p}))
    return out
