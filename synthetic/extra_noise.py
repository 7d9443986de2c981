"""The harder noise kinds: name tokens, birth year off by one, and the household address.

Name tokens: a dropped middle name ("Sumiati Nasution" for "Sumiati Salsabila Nasution"), an added one,
the family name written first, a given name written as its initial ("M. Rizki"). Birth year: one year
off with the same day and month (a common misreading of an old card). Address: how an enumerator writes
the master's address line and RT/RW - another spelling of the prefix word (Kp./Kmp./Kampung,
Jl./Jln./Jalan, Gg./Gang), RT/RW written inside the street line in one of the usual formats, a part left
out, a typo in the place name, and families that moved to another address in their village.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from synthetic.names import added_token, dropped_token, reordered_tokens, with_initial
from synthetic.noise import choose
from synthetic.profile import NoiseProfile

TOKEN_KINDS = ("name_token_dropped", "name_token_added", "name_reordered", "name_initial")

_PREFIX_SPELLINGS = {
    "Kp.": ("Kp", "Kmp.", "Kampung", "KP.", "kp."),
    "Jl.": ("Jln.", "Jalan", "JL", "Jl"),
    "Gg.": ("Gang", "GG", "Gg"),
}
_RTRW_FORMATS = (
    "RT {rt} RW {rw}",
    "RT.{rt:03d}/RW.{rw:03d}",
    "RT {rt:03d} / RW {rw:03d}",
    "{rt:03d}/{rw:03d}",
    "Rt{rt:02d} Rw{rw:02d}",
    "RT/RW {rt:03d}/{rw:03d}",
)


def token_noise(
    names: list[str],
    eligible: np.ndarray,
    rng: np.random.Generator,
    base: int,
    profile: NoiseProfile,
    rnd: random.Random,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Apply at most one name-token noise kind per row (among `eligible`); return names and masks."""
    rates = (profile.name_token_dropped, profile.name_token_added, profile.name_reordered, profile.name_initial)
    multi = np.array([len(n.split()) >= 2 for n in names], dtype=bool)
    taken = np.zeros(len(names), dtype=bool)
    masks: dict[str, np.ndarray] = {}
    out = list(names)
    for kind, rate in zip(TOKEN_KINDS, rates, strict=True):
        rows = eligible & ~taken & (multi if kind != "name_token_added" else True)
        mask = choose(rng, rows, rate, base)
        for i in np.flatnonzero(mask).tolist():
            if kind == "name_token_dropped":
                new = dropped_token(out[i], rnd)
            elif kind == "name_token_added":
                new = added_token(out[i], rnd)
            elif kind == "name_reordered":
                new = reordered_tokens(out[i])
            else:
                new = with_initial(out[i], rnd)
            if new is None or new == out[i]:
                mask[i] = False
                continue
            out[i] = new
        taken |= mask
        masks[kind] = mask
    return out, masks


def year_off(
    rng: np.random.Generator,
    year: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    rows: np.ndarray,
    base: int,
    rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(years with `rate * base` of `rows` moved one year up or down, the mask); 29 February stays."""
    mask = choose(rng, rows & ~((month == 2) & (day == 29)), rate, base)
    step = np.where(rng.random(len(year)) < 0.5, -1, 1)
    return np.where(mask, year + step, year), mask


@dataclass(frozen=True)
class Addresses:
    """Submitted address of each submission: street line, RT, RW (None: left empty) and noise masks."""

    street: list[str | None]
    rt: list[str | None]
    rw: list[str | None]
    masks: dict[str, np.ndarray]


def rtrw_text(rt: int, rw: int, rnd: random.Random) -> str:
    """RT/RW in one of the formats registers use."""
    return rnd.choice(_RTRW_FORMATS).format(rt=rt, rw=rw)


def _typo(text: str, rnd: random.Random) -> str:
    """One letter of the place name (after the prefix word) replaced, dropped or doubled."""
    head, _, place = text.partition(" ")
    name_end = place.find(" No. ") if " No. " in place else len(place)  # not in the house number
    if name_end < 4:
        return text
    i = rnd.randrange(1, name_end - 1)
    kind = rnd.randrange(3)
    if kind == 0:
        place = place[:i] + rnd.choice("AEIOUNRSTK").lower() + place[i + 1 :]
    elif kind == 1:
        place = place[:i] + place[i + 1 :]
    else:
        place = place[:i] + place[i] + place[i:]
    return f"{head} {place}"


def survey_addresses(
    street: list[str],
    rt: list[int],
    rw: list[int],
    rng: np.random.Generator,
    profile: NoiseProfile,
    new_street: list[str],
    rnd: random.Random,
) -> Addresses:
    """The address each submission writes for its family (one entry per submission).

    `new_street` holds another street line in the same village for each submission (used for movers)."""
    n = len(street)
    everyone = np.ones(n, dtype=bool)
    moved = choose(rng, everyone, profile.addr_moved, n)
    abbreviation = choose(rng, everyone, profile.addr_abbreviation, n)
    inline = choose(rng, everyone, profile.addr_rtrw_inline, n)
    missing = choose(rng, everyone, profile.addr_missing_part, n)
    typo = choose(rng, everyone, profile.addr_typo, n)
    out_street: list[str | None] = []
    out_rt: list[str | None] = []
    out_rw: list[str | None] = []
    for i in range(n):
        line, t, w = street[i], rt[i], rw[i]
        if moved[i]:
            line, t, w = new_street[i], 1 + (t + rnd.randrange(1, 7)) % 8, w
        if abbreviation[i]:
            word, _, rest = line.partition(" ")
            if word in _PREFIX_SPELLINGS:
                line = f"{rnd.choice(_PREFIX_SPELLINGS[word])} {rest}"
        if typo[i]:
            line = _typo(line, rnd)
        s: str | None = line
        rt_s: str | None = f"{t:03d}"
        rw_s: str | None = f"{w:03d}"
        if inline[i]:
            s, rt_s, rw_s = f"{line} {rtrw_text(t, w, rnd)}", None, None
        if missing[i]:
            part = rnd.randrange(3)
            if part == 0:
                s = rtrw_text(t, w, rnd) if inline[i] else None  # the street line left empty
            elif part == 1 and not inline[i]:
                rw_s = None
            elif not inline[i]:
                rt_s = None
            else:
                s = line  # inline RT/RW left out entirely
        out_street.append(s)
        out_rt.append(rt_s)
        out_rw.append(rw_s)
    masks = {
        "addr_moved": moved,
        "addr_abbreviation": abbreviation,
        "addr_rtrw_inline": inline,
        "addr_missing_part": missing,
        "addr_typo": typo,
    }
    return Addresses(out_street, out_rt, out_rw, masks)
