"""Indonesian personal names: cleaning, variant families, token split and a phonetic blocking key.

Indonesian names have no fixed given/family structure; what varies between two registers is mostly
decoration (honorifics such as H., Hj., Tgk.; academic degrees such as Drs., S.Pd., S.Kom.), the
spelling of a few very common Arabic-origin names (Muhammad, Siti, Ahmad, Abdul, ...), the pre-1972
Dutch-era spelling (oe, dj, tj) and spacing (``Wa Nasia`` / ``Wanasia``). All of that is folded here, so
the comparison levels can stay plain exact / Jaro-Winkler tests.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# Titles placed before a name (religious, pilgrimage, address forms, nobility used as a title).
HONORIFICS = frozenset(
    """H HJ HJH HAJI HAJJAH HAJAH KH KYAI TGK TEUNGKU TGKH UST USTADZ USTADZAH USTAD USTAZ BPK BAPAK BP
    IBU NY NYONYA SDR SDRI TN TUAN ALM ALMH ALMARHUM ALMARHUMAH PROF DRS DRA IR DR DRG dr""".upper().split()
)
# Academic degrees (written with or without dots), compared after removing the dots.
DEGREES = frozenset(
    [
        "SPD",
        "SPDI",
        "SKOM",
        "SH",
        "SHI",
        "SE",
        "SEI",
        "ST",
        "SAG",
        "SSOS",
        "SIP",
        "SKED",
        "SKM",
        "SKEP",
        "SFARM",
        "SPSI",
        "SSI",
        "SSY",
        "SST",
        "SHUT",
        "SPT",
        "SPI",
        "STP",
        "SIKOM",
        "SAB",
        "SPSIK",
        "SGZ",
        "SKG",
        "SKH",
        "SAK",
        "SN",
        "SDS",
        "MPD",
        "MSI",
        "MM",
        "MKOM",
        "MH",
        "MAG",
        "MKES",
        "MT",
        "MSC",
        "MBA",
        "MA",
        "MAP",
        "MHUM",
        "AMD",
        "AMA",
        "AMK",
        "AMKEB",
        "AMKEP",
        "AMPD",
        "BA",
        "BSC",
        "PHD",
    ]
)
# Spelling families of very common names -> one canonical form.
_VARIANT_FAMILIES: dict[str, Sequence[str]] = {
    "MUHAMMAD": [
        "MUHAMMAD",
        "MUHAMAD",
        "MUHAMMED",
        "MUHAMED",
        "MUHAMAT",
        "MUHAMMAT",
        "MOHAMMAD",
        "MOHAMAD",
        "MOHAMMED",
        "MOHAMED",
        "MOHAMMAT",
        "MOCHAMMAD",
        "MOCHAMAD",
        "MOCHAMED",
        "MUCHAMMAD",
        "MUCHAMAD",
        "MOCH",
        "MOH",
        "MOHD",
        "MUH",
        "MUHD",
        "MHD",
        "MUHAMMADH",
        "M",
    ],
    "SITI": ("SITI", "SITTI", "SITY", "SITIE", "SITTY"),
    "AHMAD": ("AHMAD", "ACHMAD", "AHMED", "ACHMED", "AKHMAD", "AHMADH", "ACHMAT", "AHMAT"),
    "ABDUL": ("ABDUL", "ABDOEL", "ABD", "ABDOL"),
    "NUR": ("NUR", "NOER", "NOOR", "NUUR"),
    "YUSUF": ("YUSUF", "JUSUF", "YUSUP", "JOESOEF", "YOESOEF"),
    "RAHMAN": ("RAHMAN", "RACHMAN", "RAKHMAN", "ROHMAN", "ROCHMAN"),
}
VARIANTS: dict[str, str] = {v: canon for canon, vs in _VARIANT_FAMILIES.items() for v in vs}
# Leading tokens that say little about the person (for choosing the given name used in blocking).
WEAK_LEADING_TOKENS = frozenset({"MUHAMMAD", "SITI", "NUR", "ABDUL", "I", "NI", "WA", "LA", "KADEK", "PUTU"})

# Pre-1972 spelling (Ejaan Van Ophuijsen / Soewandi) -> current spelling; applied token-wise.
_OLD_SPELLING = (("OE", "U"), ("DJ", "J"), ("TJ", "C"), ("SJ", "SY"), ("NJ", "NY"), ("CH", "KH"))

_NON_LETTER = re.compile(r"[^A-Z0-9.\s]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class NameParts:
    """The prepared name columns of one record (see `linkage.comparisons`)."""

    name_norm: str | None
    name_concat: str | None
    name_key: str | None
    given_name: str | None
    given_name_key: str | None
    other_names: str | None
    name_sorted: str | None = None
    name_initials: str | None = None


def _ascii_upper(raw: str) -> str:
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    # Apostrophes inside names (Ma'ruf, Nu'man) are dropped, not turned into a token break.
    return folded.upper().replace("'", "").replace("`", "")


_OLD_SPELLING_RE = re.compile("|".join(old for old, _ in _OLD_SPELLING))
_OLD_SPELLING_MAP = dict(_OLD_SPELLING)


def _modernise(token: str) -> str:
    # One left-to-right pass; none of the replacements creates another old-spelling pair.
    return _OLD_SPELLING_RE.sub(lambda m: _OLD_SPELLING_MAP[m.group(0)], token)


def clean_tokens(raw: str | None) -> list[str]:
    """Tokens of a name: upper case, no honorifics or degrees, variants mapped, old spelling modernised."""
    if raw is None:
        return []
    text = _ascii_upper(raw)
    # Degrees follow a comma ("Ahmad Fauzi, S.Pd., M.Si."): keep what precedes the first comma
    # unless that part is empty.
    head = text.split(",", 1)[0]
    if head.strip():
        text = head
    text = _NON_LETTER.sub(" ", text.replace("-", " "))
    return [token for piece in _SPACES.split(text.strip()) for token in _piece_tokens(piece)]


@lru_cache(maxsize=65_536)
def _piece_tokens(piece: str) -> tuple[str, ...]:
    # Cached: a register has far fewer distinct name pieces than distinct names.
    compact = piece.replace(".", "")
    if not compact or compact in HONORIFICS or compact in DEGREES:
        return ()
    # "MOH.RIZKI" or "S.PD.I" style: dots inside a piece separate tokens unless it is a degree.
    return tuple(
        VARIANTS.get(part, _modernise(part))
        for part in piece.split(".")
        if part and part not in HONORIFICS and part not in DEGREES
    )


_NOT_A_TO_Z = re.compile(r"[^A-Z]")
_SOUND_FOLDS = (("KH", "H"), ("PH", "F"), ("Q", "K"), ("X", "KS"), ("Z", "J"), ("V", "F"), ("F", "P"))


@lru_cache(maxsize=262_144)
def phonetic_key(text: str | None) -> str | None:
    """A coarse sound key for Indonesian spelling, used for blocking and as a weak name level.

    Rules, in order: letters only; old spelling (OE->U, DJ->J, TJ->C, SJ->SY, CH->KH); KH->H, PH->F,
    Q->K, X->KS, Z->J, V->F, F->P (Sundanese P/F); then the first letter is kept and every later vowel,
    H, Y and W is dropped; finally runs of the same letter collapse to one.
    """
    if not text:
        return None
    s = _NOT_A_TO_Z.sub("", text.upper())
    if not s:
        return None
    s = _modernise(s)
    for old, new in _SOUND_FOLDS:
        s = s.replace(old, new)
    out = [s[0]]
    for ch in s[1:]:
        if ch in "AEIOUHYW":
            continue
        if ch != out[-1]:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=262_144)
def normalise_name(raw: str | None) -> NameParts:
    """All prepared name columns of a raw name (cached: registers repeat names a lot)."""
    tokens = clean_tokens(raw)
    if not tokens:
        return NameParts(None, None, None, None, None, None, None, None)
    name_norm = " ".join(tokens)
    concat = "".join(tokens)
    # The given name used for blocking skips weak leading tokens ("MUHAMMAD RIZKI" -> RIZKI) so that a
    # village block is not every Muhammad in it; the first strong token, or the first token.
    given = next((t for t in tokens if t not in WEAK_LEADING_TOKENS), tokens[0])
    at = tokens.index(given)
    other_names = " ".join(tokens[:at] + tokens[at + 1 :]) or None
    return NameParts(
        name_norm=name_norm,
        name_concat=concat,
        name_key=phonetic_key(concat),
        given_name=given,
        given_name_key=phonetic_key(given),
        other_names=other_names,
        # the same tokens in another order ("NASUTION SUMIATI") are the same name
        name_sorted=" ".join(sorted(tokens)),
        # "A RAHMAN" ~ "ABDUL RAHMAN": every token but the last reduced to its initial (two tokens or more)
        name_initials=" ".join([t[0] for t in tokens[:-1]] + [tokens[-1]]) if len(tokens) > 1 else None,
    )
