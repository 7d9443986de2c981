"""Gender-consistent Indonesian name pools and the name variants seen in field data.

Pools come from Faker id_ID's gendered word lists (first_names_male / first_names_female and the
gendered last names), never from name_male()/name_female(), which mix genders. "Muhammad" and "Siti"
are removed from the pools and added as explicit prefixes; the unisex names (Ade, Eka) stay male only
so that a canonical first given name always tells the sex.
"""

from __future__ import annotations

import random

import numpy as np
from faker.providers.person.id_ID import Provider as _FakerPerson

_UNISEX = {"Ade", "Eka"}
_PREFIXED = {"Muhammad", "Siti"}

MALE_FIRST: tuple[str, ...] = tuple(n for n in _FakerPerson.first_names_male if n not in _PREFIXED)
FEMALE_FIRST: tuple[str, ...] = tuple(n for n in _FakerPerson.first_names_female if n not in _PREFIXED | _UNISEX)
MALE_LAST: tuple[str, ...] = tuple(_FakerPerson.last_names_male)
FEMALE_LAST: tuple[str, ...] = tuple(_FakerPerson.last_names_female)

MUHAMMAD_VARIANTS = ("Muhamad", "Mohammad", "Mochammad", "Mohamad", "Moh.", "Muh.", "M.")
SITI_VARIANTS = ("Sity", "Sitti")
MALE_HONORIFICS = ("H.", "Drs.", "Ir.", "dr.", "Tgk.")
FEMALE_HONORIFICS = ("Hj.", "Dra.", "Ir.", "dr.")
DEGREES = ("S.Pd.", "S.Kom.", "S.E.", "S.H.", "S.Sos.", "S.T.")
# Old (Van Ophuijsen / Soewandi) spellings still on many ID cards, applied in either direction.
_SPELLING = (("u", "oe"), ("j", "dj"), ("c", "tj"), ("y", "j"), ("i", "ie"))

# Share of each name form; the rest is "<first> <last>".
_MUHAMMAD_SHARE = 0.12
_SITI_SHARE = 0.12
_MONONYM_SHARE = 0.10
_TWO_GIVEN_SHARE = 0.08


def sample_names(rng: np.random.Generator, female: np.ndarray, muslim: np.ndarray) -> list[str]:
    """Draw one canonical full name per person, consistent with sex (and Muhammad/Siti for Muslims)."""
    n = len(female)
    form = rng.random(n)
    first_m = rng.integers(0, len(MALE_FIRST), n).tolist()
    first_f = rng.integers(0, len(FEMALE_FIRST), n).tolist()
    second_m = rng.integers(0, len(MALE_FIRST), n).tolist()
    second_f = rng.integers(0, len(FEMALE_FIRST), n).tolist()
    last_m = rng.integers(0, len(MALE_LAST), n).tolist()
    last_f = rng.integers(0, len(FEMALE_LAST), n).tolist()
    names: list[str] = []
    columns = zip(female.tolist(), muslim.tolist(), form.tolist(), strict=True)
    for i, (is_f, is_muslim, u) in enumerate(columns):
        if is_f:
            first, second, last = FEMALE_FIRST[first_f[i]], FEMALE_FIRST[second_f[i]], FEMALE_LAST[last_f[i]]
            prefix = "Siti"
            prefixed = _SITI_SHARE
        else:
            first, second, last = MALE_FIRST[first_m[i]], MALE_FIRST[second_m[i]], MALE_LAST[last_m[i]]
            prefix = "Muhammad"
            prefixed = _MUHAMMAD_SHARE
        if not is_muslim:  # no Muhammad/Siti: spread the other forms over the whole range
            u = prefixed + u * (1 - prefixed)
        if u < prefixed:
            names.append(f"{prefix} {first}" if u < prefixed / 2 else f"{prefix} {first} {last}")
        elif u < prefixed + _MONONYM_SHARE:
            names.append(first)
        elif u < prefixed + _MONONYM_SHARE + _TWO_GIVEN_SHARE and second != first:
            names.append(f"{first} {second}")
        else:
            names.append(f"{first} {last}")
    return names


def first_given_name(full_name: str) -> str:
    """The first given name of a canonical name (skipping the Muhammad/Siti prefix)."""
    tokens = full_name.split()
    if len(tokens) > 1 and tokens[0] in _PREFIXED:
        return tokens[1]
    return tokens[0]


def spelling_variant(name: str, rnd: random.Random) -> str:
    """A spelling variant as written by an enumerator: Muhammad/Siti forms, old spellings, initials."""
    tokens = name.split()
    if tokens[0] == "Muhammad":
        return " ".join([rnd.choice(MUHAMMAD_VARIANTS), *tokens[1:]])
    if tokens[0] == "Siti":
        return " ".join([rnd.choice(SITI_VARIANTS), *tokens[1:]])
    options: list[str] = []
    for i, token in enumerate(tokens):
        lower = token.lower()
        for new, old in _SPELLING:
            if old in lower[1:]:
                options.append(_replace_token(tokens, i, token[0] + token[1:].replace(old, new, 1)))
            elif new in lower[1:]:
                options.append(_replace_token(tokens, i, token[0] + token[1:].replace(new, old, 1)))
        if lower.endswith("h") and len(token) > 3:
            options.append(_replace_token(tokens, i, token[:-1]))
    if len(tokens) > 1:
        options.append(" ".join([*tokens[:-1], tokens[-1][0] + "."]))  # last name as an initial
    options = [o for o in options if o != name]
    if not options:
        return name + "h" if not name.endswith("h") else name[:-1]
    return rnd.choice(options)


def _replace_token(tokens: list[str], index: int, token: str) -> str:
    return " ".join(tokens[:index] + [token] + tokens[index + 1 :])


def with_honorific(name: str, female: bool, rnd: random.Random) -> str:
    """The name with a religious/professional title or an academic degree, as people write it."""
    if rnd.random() < 0.35:
        return f"{name}, {rnd.choice(DEGREES)}"
    return f"{rnd.choice(FEMALE_HONORIFICS if female else MALE_HONORIFICS)} {name}"


def case_spacing_variant(name: str, rnd: random.Random) -> str:
    """Upper/lower case, a doubled or a missing space (e.g. "Wa Nasia" written "Wanasia")."""
    tokens = name.split(" ")
    choices = ["upper", "lower", "pad"]
    if len(tokens) > 1:
        choices += ["double", "join"]
    kind = rnd.choice(choices)
    if kind == "upper":
        out = name.upper()
    elif kind == "lower":
        out = name.lower()
    elif kind == "double":
        i = rnd.randrange(len(tokens) - 1)
        out = " ".join(tokens[: i + 1]) + "  " + " ".join(tokens[i + 1 :])
    elif kind == "join":
        i = rnd.randrange(len(tokens) - 1)
        out = " ".join(tokens[:i] + [tokens[i] + tokens[i + 1]] + tokens[i + 2 :])
    else:
        out = f" {name} "
    return out if out != name else f"{name} "


# Middle names enumerators add from memory or from another document (a dropped one is the reverse).
_ADDED_TOKENS = ("Nur", "Sri", "Dwi", "Tri", "Eka", "Putri", "Putra", "Dewi", "Ayu", "Budi", "Indah", "Rahmat")


def dropped_token(name: str, rnd: random.Random) -> str | None:
    """The name without one of its later tokens (the middle one of three); None for a single name."""
    tokens = name.split()
    if len(tokens) < 2:
        return None
    i = len(tokens) // 2 if len(tokens) >= 3 else (0 if tokens[0] in _PREFIXED else 1)
    return " ".join(tokens[:i] + tokens[i + 1 :])


def added_token(name: str, rnd: random.Random) -> str:
    """The name with an extra middle name (or a second one for a single name)."""
    tokens = name.split()
    extra = rnd.choice([t for t in _ADDED_TOKENS if t not in tokens])
    at = 1 if len(tokens) >= 2 else len(tokens)
    return " ".join(tokens[:at] + [extra] + tokens[at:])


def reordered_tokens(name: str) -> str | None:
    """The family name first ("Nasution Sumiati"); None for a single name."""
    tokens = name.split()
    if len(tokens) < 2:
        return None
    return " ".join(tokens[-1:] + tokens[:-1])


def with_initial(name: str, rnd: random.Random) -> str | None:
    """One token before the last written as its initial ("M. Rizki", "A. Rahman Hakim"); None for a
    single name."""
    tokens = name.split()
    if len(tokens) < 2:
        return None
    i = rnd.randrange(len(tokens) - 1)
    return " ".join(tokens[:i] + [tokens[i][0] + "."] + tokens[i + 1 :])
