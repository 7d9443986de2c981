"""Field noise applied to records derived from the master: NIK errors, birth-date errors, name variants.

Every function takes the rows it may touch and returns what it changed, so the caller can tag them.
Wrong NIKs stay structurally valid (16 digits, known province, real date part, serial not 0000): the
contracts reject structurally invalid NIKs, and the errors we model (a neighbour's NIK, a swap, a slip
of one digit) are the ones that survive a form's check digits-and-date validation in the field app.
"""

from __future__ import annotations

import random

import lokal
import numpy as np

from synthetic.names import case_spacing_variant, spelling_variant, with_honorific


def choose(rng: np.random.Generator, eligible: np.ndarray, rate: float, base: int) -> np.ndarray:
    """Pick eligible rows so that about `rate * base` rows are picked in total.

    Some noise is only possible for part of the rows (a day/month swap needs day <= 12); raising the
    probability inside the eligible part keeps the overall rate equal to the profile's.
    """
    n_eligible = int(eligible.sum())
    if n_eligible == 0 or rate <= 0:
        return np.zeros(len(eligible), dtype=bool)
    p = min(1.0, rate * base / n_eligible)
    picked: np.ndarray = eligible & (rng.random(len(eligible)) < p)
    return picked


def nik_is_valid(nik: str) -> bool:
    """Structurally valid NIK by lokal-id's rules (the same ones the contracts apply)."""
    return bool(lokal.parse_nik(nik).valid)


def transpose_nik(nik: str, rnd: random.Random) -> str:
    """Swap two adjacent, different digits in the date or serial part, keeping the NIK valid."""
    positions = [i for i in range(6, 15) if nik[i] != nik[i + 1]]
    rnd.shuffle(positions)
    for i in positions:
        candidate = nik[:i] + nik[i + 1] + nik[i] + nik[i + 2 :]
        if nik_is_valid(candidate):
            return candidate
    return mistype_nik(nik, rnd)


def mistype_nik(nik: str, rnd: random.Random) -> str:
    """Replace one digit (mostly in the serial, sometimes the date or region), keeping the NIK valid."""
    for _ in range(50):
        u = rnd.random()
        pos = rnd.randrange(12, 16) if u < 0.7 else (rnd.randrange(6, 12) if u < 0.9 else rnd.randrange(2, 6))
        digit = rnd.choice([d for d in "0123456789" if d != nik[pos]])
        candidate = nik[:pos] + digit + nik[pos + 1 :]
        if nik_is_valid(candidate):
            return candidate
    return nik[:15] + ("1" if nik[15] != "1" else "2")  # last resort: the serial's last digit


def name_noise(
    names: list[str],
    female: list[bool],
    adult: np.ndarray,
    rng: np.random.Generator,
    base: int,
    variant_rate: float,
    honorific_rate: float,
    case_rate: float,
    rnd: random.Random,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Apply spelling variants, honorifics (adults only) and case/spacing noise; return the masks."""
    n = len(names)
    everyone = np.ones(n, dtype=bool)
    variant = choose(rng, everyone, variant_rate, base)
    honorific = choose(rng, adult, honorific_rate, base)
    case = choose(rng, everyone, case_rate, base)
    out = list(names)
    for i in np.flatnonzero(variant | honorific | case).tolist():
        name = out[i]
        if variant[i]:
            name = spelling_variant(name, rnd)
        if honorific[i]:
            name = with_honorific(name, female[i], rnd)
        if case[i]:
            name = case_spacing_variant(name, rnd)
        out[i] = name
    return out, variant, honorific, case


def birth_date_noise(
    rng: np.random.Generator,
    day: np.ndarray,
    month: np.ndarray,
    rows: np.ndarray,
    base: int,
    swapped_rate: float,
    year_only_rate: float,
    placeholder_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of rows (within `rows`) whose date gets a day/month swap, only a year, or a placeholder."""
    # 7 January would turn into 1 July, indistinguishable from a day/month swap: leave it alone.
    is_placeholder = ((day == 1) & (month == 7)) | ((day == 31) & (month == 12)) | ((day == 7) & (month == 1))
    swapped = choose(rng, rows & (day <= 12) & (day != month), swapped_rate, base)
    year_only = choose(rng, rows & ~swapped, year_only_rate, base)
    placeholder = choose(rng, rows & ~swapped & ~year_only & ~is_placeholder, placeholder_rate, base)
    return swapped, year_only, placeholder
