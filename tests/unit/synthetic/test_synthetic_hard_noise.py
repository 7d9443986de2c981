"""The `hard` profile's noise kinds measured back from a generated world, by comparing the submissions
with the master records they truly belong to (detectors read the data; the tags are checked to agree)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest
from rapidfuzz.distance import Levenshtein

from linkage.normalise.address import household_address, normalise_address
from synthetic import NoiseProfile, World, generate_world

PROFILE = NoiseProfile.hard()


@dataclass(frozen=True)
class Row:
    """A submitted member, the master person it is, and its noise tags."""

    doc: dict[str, Any]
    member: dict[str, Any]
    master: dict[str, Any]
    tags: set[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return generate_world(tmp_path_factory.mktemp("hard"), persons=20_000, seed=77, profile=PROFILE)


@pytest.fixture(scope="module")
def master(world: World) -> dict[str, dict[str, Any]]:
    return {r["nik"]: r for r in pq.read_table(world.population).to_pylist()}


@pytest.fixture(scope="module")
def rows(world: World, master: dict[str, dict[str, Any]]) -> list[Row]:
    truth = iter(t for t in pq.read_table(world.truth).to_pylist() if t["source"] == "member")
    out: list[Row] = []
    with world.submissions.open() as fh:
        for line in fh:
            doc = json.loads(line)
            for m in doc["members"]:
                t = next(truth)
                if t["true_nik"]:
                    out.append(Row(doc, m, master[t["true_nik"]], set(t["noise"].split("|")) - {""}))
    return out


def _tokens(name: str) -> list[str]:
    return re.sub(r"[^A-Z ]", " ", name.upper()).split()


def _check(rows: list[Row], tag: str, rate: float, detect: Callable[[Row], bool], low: float = 0.8) -> None:
    """The detected share is close to the profile's rate, and detected rows carry the tag."""
    found = [r for r in rows if detect(r)]
    assert low * rate <= len(found) / len(rows) <= 1.2 * rate, (tag, len(found) / len(rows))
    tagged = sum(1 for r in found if tag in r.tags)
    assert tagged >= 0.9 * len(found), (tag, tagged, len(found))
    assert sum(1 for r in rows if tag in r.tags) / len(rows) == pytest.approx(rate, rel=0.2)


def test_relatives_nik_from_another_family(rows: list[Row], master: dict[str, dict[str, Any]]) -> None:
    def detect(r: Row) -> bool:
        holder = master.get(r.member["nik"] or "")
        return holder is not None and holder is not r.master and holder["kk_number"] != r.master["kk_number"]

    _check(rows, "nik_relative", PROFILE.nik_relative, detect)


def test_dropped_and_added_name_tokens(rows: list[Row]) -> None:
    def dropped(r: Row) -> bool:
        sub, ref = _tokens(r.member["name"]), _tokens(r.master["full_name"])
        return len(sub) == len(ref) - 1 and set(sub) < set(ref)

    def added(r: Row) -> bool:
        sub, ref = _tokens(r.member["name"]), _tokens(r.master["full_name"])
        extra = [t for t in sub if t not in ref]
        return len(sub) == len(ref) + 1 and set(ref) < set(sub) and extra[0].title() in ADDED

    # other noise on the same name (a spelling variant, an honorific) hides a few: low bound 0.7
    _check(rows, "name_token_dropped", PROFILE.name_token_dropped, dropped, low=0.7)
    _check(rows, "name_token_added", PROFILE.name_token_added, added, low=0.7)


def test_reordered_and_initialled_names(rows: list[Row]) -> None:
    def reordered(r: Row) -> bool:
        sub, ref = _tokens(r.member["name"]), _tokens(r.master["full_name"])
        return sub != ref and sorted(sub) == sorted(ref)

    def initial(r: Row) -> bool:
        sub, ref = _tokens(r.member["name"]), _tokens(r.master["full_name"])
        if len(sub) != len(ref) or len(ref) < 2:
            return False
        diff = [i for i, (a, b) in enumerate(zip(sub, ref, strict=True)) if a != b]
        return len(diff) == 1 and diff[0] < len(ref) - 1 and sub[diff[0]] == ref[diff[0]][0]

    _check(rows, "name_reordered", PROFILE.name_reordered, reordered, low=0.7)
    _check(rows, "name_initial", PROFILE.name_initial, initial, low=0.7)


def test_birth_year_off_by_one_same_day_and_month(rows: list[Row]) -> None:
    def detect(r: Row) -> bool:
        bd, ref = r.member["birth_date"], r.master["birth_date"]
        if not bd.get("day") or not bd.get("month"):
            return False
        return (bd["day"], bd["month"]) == (ref.day, ref.month) and abs(bd["year"] - ref.year) == 1

    _check(rows, "dob_year_off", PROFILE.dob_year_off, detect)


def _addresses(rows: list[Row]) -> list[tuple[Row, Any, Any]]:
    """One entry per submission: (its first master member's row, submitted parts, master parts)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.doc["submission_id"] in seen:
            continue
        seen.add(r.doc["submission_id"])
        a = r.doc["address"]
        sub = normalise_address(household_address(a.get("street"), a.get("rt"), a.get("rw")))
        ref = normalise_address(household_address(r.master["address"], r.master["rt"], r.master["rw"]))
        out.append((r, sub, ref))
    return out


def test_address_noise(rows: list[Row]) -> None:
    subs = _addresses(rows)
    assert len(subs) > 4_000

    def share(detect: Callable[[Any, Any, Row], bool], tag: str) -> tuple[float, float]:
        found = [(r, s, m) for r, s, m in subs if detect(s, m, r)]
        agree = sum(1 for r, _, _ in found if tag in r.tags) / max(1, len(found))
        return len(found) / len(subs), agree

    def far(s: Any, m: Any) -> bool:
        return s.addr_place is not None and Levenshtein.distance(s.addr_place, m.addr_place) > 2

    checks = {
        "addr_moved": (PROFILE.addr_moved, lambda s, m, r: far(s, m)),
        "addr_typo": (
            PROFILE.addr_typo,
            lambda s, m, r: s.addr_place is not None and 1 <= Levenshtein.distance(s.addr_place, m.addr_place) <= 2,
        ),
        "addr_missing_part": (
            PROFILE.addr_missing_part,
            lambda s, m, r: None in (s.addr_place, s.addr_rt, s.addr_rw),
        ),
        "addr_rtrw_inline": (
            PROFILE.addr_rtrw_inline,
            lambda s, m, r: (
                not r.doc["address"].get("rt") and normalise_address(r.doc["address"].get("street")).addr_rt is not None
            ),
        ),
        "addr_abbreviation": (
            PROFILE.addr_abbreviation,
            lambda s, m, r: (
                not far(s, m)
                and ((r.doc["address"].get("street") or "").split() or [None])[0] != r.master["address"].split()[0]
                and bool(r.doc["address"].get("street"))
            ),
        ),
    }
    for tag, (rate, detect) in checks.items():
        measured, agree = share(detect, tag)
        assert 0.75 * rate <= measured <= 1.25 * rate, (tag, measured, rate)
        assert agree >= 0.85, (tag, agree)
    # the household key survives formats and abbreviations: most untouched-by-moves/typos/gaps agree
    untouched = [(s, m) for r, s, m in subs if not r.tags & {"addr_moved", "addr_typo", "addr_missing_part"}]
    same = [s.household_key == m.household_key for s, m in untouched]
    assert sum(same) / len(same) > 0.99


ADDED = {"Nur", "Sri", "Dwi", "Tri", "Eka", "Putri", "Putra", "Dewi", "Ayu", "Budi", "Indah", "Rahmat"}
