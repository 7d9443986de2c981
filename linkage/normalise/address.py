"""Indonesian address lines: the place (kampung, dusun, street, housing estate), RT and RW.

Registers write one household's address in many ways: ``Kp. Sukamaju RT 003/009``, ``KAMPUNG SUKAMAJU
RT.3 RW.9``, ``Kmp Sukamaju, Rt03 Rw09``, ``Jln. Melati No. 5 RT 003 / RW 009``, ``Desa Sukamaju
003/009``. What identifies the household is the place name plus the neighbourhood (RT within RW); the
prefix word, house number, punctuation, case and zero padding are decoration and are folded here.
Desa/kelurahan, kecamatan and kabupaten parts are dropped from the place (the village code carries
them); a desa name is kept as the place only when nothing else names one (``Desa Sukamaju RT 3``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# fmt: off
# Prefix words -> their canonical kind. Street-like kinds start a place name.
_PLACE_KINDS = {
    "KP": "KP", "KMP": "KP", "KAMP": "KP", "KAMPUNG": "KP", "KAMPONG": "KP", "KAMPOENG": "KP",
    "DSN": "DSN", "DUSUN": "DSN", "DUKUH": "DSN", "DKH": "DSN",
    "JL": "JL", "JLN": "JL", "JALAN": "JL", "JLAN": "JL",
    "GG": "GG", "GANG": "GG",
    "PERUM": "PERUM", "PERUMAHAN": "PERUM", "PRM": "PERUM",
    "LR": "LR", "LRG": "LR", "LORONG": "LR",
}
# Administrative parts (the village code already says this) and their canonical kind.
_ADMIN_KINDS = {
    "DESA": "DESA", "DS": "DESA", "KEL": "DESA", "KELURAHAN": "DESA", "LURAH": "DESA",
    "KEC": "KEC", "KECAMATAN": "KEC", "KAB": "KAB", "KABUPATEN": "KAB", "KOTA": "KAB",
    "PROV": "KAB", "PROVINSI": "KAB",
}
# fmt: on
# Words that end a place name without naming anything themselves.
_STOP_WORDS = frozenset({"BLK", "BLOK", "NO", "NOMOR", "NOMER", "NMR", "RT", "RW", "RTRW"})

_RT = re.compile(r"\bRT\s*\.?\s*0*(\d{1,3})\b")
_RW = re.compile(r"\bRW\s*\.?\s*0*(\d{1,3})\b")
# "RT/RW 003/009", "RT.RW 3/9", "RT RW 003 009"
_RTRW = re.compile(
    r"\bRT\s*[/.]?\s*RW\s*\.?\s*0*(\d{1,3})\s*[/\s]\s*0*(\d{1,3})\b"
    r"|\bRT\s*\.?\s*0*(\d{1,3})\s*/\s*(?:RW\s*\.?\s*)?0*(\d{1,3})\b"  # "RT 003/009", "RT.003/RW.009"
)
# bare "003/009" (only when no RT/RW word is present)
_BARE = re.compile(r"(?<![\d/])0*(\d{1,3})\s*/\s*0*(\d{1,3})(?![\d/])")
# house numbers: "No. 5", "NO 12A", "Nomor 3", "#7"
_NUMBER = re.compile(r"(\bNO(?:MOR|MER)?|\bNMR|#)\s*\.?\s*[0-9]+[A-Z]?(?:\s*/\s*[0-9]+[A-Z]?)?\b")
_NON_WORD = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True)
class AddressParts:
    """The prepared address columns of one record (see `linkage.comparisons`)."""

    addr_place: str | None
    addr_rt: str | None
    addr_rw: str | None
    household_key: str | None


_EMPTY = AddressParts(None, None, None, None)


def _number(text: str) -> str | None:
    value = int(text)
    return str(value) if value > 0 else None  # RT 000 means unknown on paper forms


def _split_rt_rw(text: str) -> tuple[str, str | None, str | None]:
    """Remove the RT/RW parts from `text`; return the rest and the two numbers (no zero padding)."""
    rt = rw = None
    both = _RTRW.search(text)
    if both:
        rt = _number(both.group(1) or both.group(3))
        rw = _number(both.group(2) or both.group(4))
        text = text[: both.start()] + " " + text[both.end() :]
    else:
        found_rt, found_rw = _RT.search(text), _RW.search(text)
        if found_rt:
            rt = _number(found_rt.group(1))
        if found_rw:
            rw = _number(found_rw.group(1))
        text = _RW.sub(" ", _RT.sub(" ", text))
        if not found_rt and not found_rw:
            bare = _BARE.search(text)
            if bare:
                rt, rw = _number(bare.group(1)), _number(bare.group(2))
                text = text[: bare.start()] + " " + text[bare.end() :]
    return text, rt, rw


def _place(tokens: list[str]) -> str | None:
    """The place name: the words after the first kampung/dusun/street prefix (up to the next keyword);
    else the leading unprefixed words; else the desa name. A prefix word right after another one is a
    name ("Kp. Dukuh", "Jl. Kampung Baru")."""
    segments: list[tuple[str, list[str]]] = [("", [])]
    for token in tokens:
        if token in _STOP_WORDS:
            segments.append(("STOP", []))
        elif token in _PLACE_KINDS and not (segments[-1][0] in _PLACE_KINDS.values() and not segments[-1][1]):
            segments.append((_PLACE_KINDS[token], []))
        elif token in _ADMIN_KINDS:
            segments.append((_ADMIN_KINDS[token], []))
        else:
            segments[-1][1].append(token)
    for kind, words in segments:
        if kind in _PLACE_KINDS.values() and words:
            return " ".join(words)
    if segments[0][1]:
        return " ".join(segments[0][1])
    for kind, words in segments:
        if kind == "DESA" and words:
            return " ".join(words)
    return None


@lru_cache(maxsize=131_072)
def normalise_address(raw: str | None) -> AddressParts:
    """Place name, RT, RW and household key (place|RT|RW, only when all three are known) of an address."""
    if raw is None:
        return _EMPTY
    text = unicodedata.normalize("NFKD", str(raw)).encode("ascii", "ignore").decode("ascii").upper()
    text = re.sub(r"[,;:()\-]", " ", text)
    text, rt, rw = _split_rt_rw(_NUMBER.sub(" ", text))
    # "JL.MELATI" -> "JL MELATI"; dots and other punctuation only separate words
    tokens = [t for t in _NON_WORD.split(text) if t]
    place = _place(tokens)
    key = f"{place}|{rt}|{rw}" if place and rt and rw else None
    return AddressParts(place, rt, rw, key)


def household_address(street: object, rt: object = None, rw: object = None) -> str | None:
    """One address line from a street line and separate RT/RW fields (as the questionnaire and the
    population file hold them): ``Kp. Sukamaju RT 003 RW 009``; None when all three are empty."""
    parts = [str(street).strip() if street is not None else ""]
    for word, value in (("RT", rt), ("RW", rw)):
        text = str(value).strip() if value is not None else ""
        if text:
            parts.append(f"{word} {text}")
    line = " ".join(p for p in parts if p)
    return line or None
