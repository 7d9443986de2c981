"""Measure the noise in a generated world against the profile, by comparing submissions to the master.

The detectors below look at the data (submitted value vs the master record truth points to), not at the
noise tags; the tags are checked separately for agreement with what the data shows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest

from synthetic import NoiseProfile, World, generate_world
from synthetic.names import DEGREES, FEMALE_HONORIFICS, MALE_HONORIFICS, MUHAMMAD_VARIANTS

PROFILE = NoiseProfile()
TITLES = {t.rstrip(",") for t in (*MALE_HONORIFICS, *FEMALE_HONORIFICS, *DEGREES)}


@dataclass(frozen=True)
class Pair:
    """A submitted member next to the master record it truly belongs to (None if not in the master)."""

    doc: dict[str, Any]
    member: dict[str, Any]
    master: dict[str, Any] | None
    tags: set[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return generate_world(tmp_path_factory.mktemp("noise"), persons=20000, seed=2022, profile=PROFILE)


@pytest.fixture(scope="module")
def pairs(world: World) -> list[Pair]:
    master = {r["nik"]: r for r in pq.read_table(world.population).to_pylist()}
    truth = [t for t in pq.read_table(world.truth).to_pylist() if t["source"] == "member"]
    out: list[Pair] = []
    it = iter(truth)
    for doc in _docs(world):
        for m in doc["members"]:
            t = next(it)
            assert t["record_id"] == f"{doc['submission_id']}/{m['serial']}"
            tags = set(t["noise"].split("|")) - {""}
            out.append(Pair(doc, m, master.get(t["true_nik"]) if t["true_nik"] else None, tags))
    return out


def _docs(world: World) -> Iterator[dict[str, Any]]:
    with world.submissions.open() as fh:
        for line in fh:
            yield json.loads(line)


def _in_master(pairs: list[Pair]) -> list[Pair]:
    return [p for p in pairs if p.master is not None]


def _rate(pairs: list[Pair], detect: Any) -> float:
    return sum(1 for p in pairs if detect(p)) / len(pairs)


def _nik_diff(p: Pair) -> list[int]:
    assert p.master is not None
    return [i for i, (a, b) in enumerate(zip(p.member["nik"], p.master["nik"], strict=True)) if a != b]


def test_nik_missing_and_wrong_rates(pairs: list[Pair]) -> None:
    known = _in_master(pairs)
    kk_niks: dict[str, set[str]] = {}
    for p in known:
        assert p.master is not None
        kk_niks.setdefault(p.master["kk_number"], set()).add(p.master["nik"])

    def family_member(p: Pair) -> bool:
        assert p.master is not None
        nik = p.member["nik"]
        return nik is not None and nik != p.master["nik"] and nik in kk_niks[p.master["kk_number"]]

    def transposed(p: Pair) -> bool:
        if p.member["nik"] is None or family_member(p):
            return False
        d = _nik_diff(p)
        return len(d) == 2 and d[1] == d[0] + 1

    def mistyped(p: Pair) -> bool:
        return p.member["nik"] is not None and not family_member(p) and len(_nik_diff(p)) == 1

    assert _rate(known, lambda p: p.member["nik"] is None) == pytest.approx(PROFILE.nik_missing, abs=0.02)
    assert _rate(known, family_member) == pytest.approx(PROFILE.nik_family_member, abs=0.004)
    assert _rate(known, transposed) == pytest.approx(PROFILE.nik_transposed, abs=0.004)
    # singletons cannot carry a family member's NIK; theirs is mistyped instead
    assert _rate(known, mistyped) == pytest.approx(PROFILE.nik_mistyped, abs=0.005)
    correct = _rate(known, lambda p: p.master is not None and p.member["nik"] == p.master["nik"])
    wrong = PROFILE.nik_family_member + PROFILE.nik_transposed + PROFILE.nik_mistyped
    assert correct == pytest.approx(1 - PROFILE.nik_missing - wrong, abs=0.02)
    for p in known:  # the tags say exactly what the data shows
        assert ("nik_missing" in p.tags) == (p.member["nik"] is None)
        assert ("nik_family_member" in p.tags) == family_member(p)


def test_name_noise_rates(pairs: list[Pair]) -> None:
    known = _in_master(pairs)

    def titled(p: Pair) -> bool:
        return any(tok.strip(",").rstrip(",") in TITLES for tok in p.member["name"].replace(",", " ").split())

    differs = _rate(known, lambda p: p.master is not None and p.member["name"] != p.master["full_name"])
    expected = 1 - (1 - PROFILE.name_variant) * (1 - PROFILE.name_honorific) * (1 - PROFILE.name_case_spacing)
    assert differs == pytest.approx(expected, abs=0.015)
    assert _rate(known, titled) == pytest.approx(PROFILE.name_honorific, abs=0.008)
    muhammad = [p for p in known if p.master is not None and p.master["full_name"].startswith("Muhammad ")]
    spelled = _rate(
        muhammad,
        lambda p: (
            p.member["name"].split()[0].strip(",").title()
            in {v.title() for v in MUHAMMAD_VARIANTS} | {"H.", "Drs.", "Ir.", "Dr.", "Tgk."}
            and not p.member["name"].upper().startswith("MUHAMMAD ")
            and "name_variant" in p.tags
        ),
    )
    assert len(muhammad) > 500 and spelled == pytest.approx(PROFILE.name_variant, abs=0.03)
    for p in known:
        name_tags = p.tags & {"name_variant", "name_honorific", "name_case_spacing"}
        assert p.master is not None
        assert bool(name_tags) == (p.member["name"] != p.master["full_name"])


def test_birth_date_and_sex_noise_rates(pairs: list[Pair]) -> None:
    known = _in_master(pairs)

    def parts(p: Pair) -> tuple[Any, Any, Any, int, int, int]:
        assert p.master is not None
        b, t = p.member["birth_date"], p.master["birth_date"]
        return b["day"], b["month"], b["year"], t.day, t.month, t.year

    def swapped(p: Pair) -> bool:
        d, m, _, td, tm, _ = parts(p)
        return td != tm and (d, m) == (tm, td)

    def year_only(p: Pair) -> bool:
        d, m, y, _, _, ty = parts(p)
        return d is None and m is None and y == ty

    def placeholder(p: Pair) -> bool:
        d, m, _, td, tm, _ = parts(p)
        return (d, m) in {(1, 7), (31, 12)} and (td, tm) != (d, m)

    assert all(parts(p)[2] == parts(p)[5] for p in known)  # the year is always right
    assert _rate(known, swapped) == pytest.approx(PROFILE.dob_swapped, abs=0.004)
    assert _rate(known, year_only) == pytest.approx(PROFILE.dob_year_only, abs=0.006)
    assert _rate(known, placeholder) == pytest.approx(PROFILE.dob_placeholder, abs=0.004)
    assert _rate(known, lambda p: p.member["sex"] is None) == pytest.approx(PROFILE.sex_missing, abs=0.004)
    for p in known:
        assert ("dob_swapped" in p.tags) == swapped(p)
        assert ("dob_year_only" in p.tags) == year_only(p)
        assert ("sex_missing" in p.tags) == (p.member["sex"] is None)
        if p.member["sex"] is not None and p.master is not None:
            assert p.member["sex"] == (2 if p.master["sex"] == "F" else 1)


def test_new_members_and_presence_events(pairs: list[Pair]) -> None:
    originals = [p for p in pairs if p.doc["revision"] == 1]
    new = [p for p in originals if p.master is None]
    assert len(new) / len(originals) == pytest.approx(PROFILE.not_in_master, abs=0.006)
    assert all(p.member["presence"] == 4 for p in new)
    newborns = [p for p in new if p.member["age"] == 0]
    assert len(newborns) / len(new) == pytest.approx(PROFILE.newborn_share, abs=0.08)
    assert all(p.member["nik"] is None for p in newborns)
    known = _in_master(pairs)
    presence = Counter(p.member["presence"] for p in known)
    assert presence[2] / len(known) == pytest.approx(PROFILE.died, abs=0.003)
    assert presence[3] / len(known) == pytest.approx(PROFILE.moved, abs=0.004)
    for p in known:
        assert p.master is not None and p.master["status"] == "alive" and not p.master["moved_out"]
        assert ("died" in p.tags) == (p.member["presence"] == 2)


def test_duplicates_and_revisions(world: World, pairs: list[Pair]) -> None:
    docs = list(_docs(world))
    originals = [d for d in docs if d["revision"] == 1]
    revisions = [d for d in docs if d["revision"] == 2]
    seen: dict[str, int] = {}
    for i, d in enumerate(docs):
        if d["revision"] == 2:
            first = seen[d["submission_id"].removesuffix("-r2")]
            assert docs[first]["family_key"] == d["family_key"]
            assert docs[first]["enumerated_at"] < d["enumerated_at"]
        else:
            seen[d["submission_id"].removesuffix("-r1")] = i
    # group originals by the set of true NIKs they list; a duplicate lists the same people under a new key
    people: dict[str, set[str]] = {}
    keys: dict[str, str] = {}
    for p in pairs:
        if p.doc["revision"] == 1 and p.master is not None:
            people.setdefault(p.doc["submission_id"], set()).add(p.master["nik"])
            keys[p.doc["submission_id"]] = json.dumps(p.doc["family_key"], sort_keys=True)
    groups = Counter(frozenset(v) for v in people.values())
    twice = sum(1 for c in groups.values() if c == 2)
    n_families = len(originals) - twice
    assert twice / n_families == pytest.approx(PROFILE.duplicate_family, abs=0.006)
    assert len(set(keys.values())) == len(keys)  # every original has its own family key
    assert len(revisions) / n_families == pytest.approx(PROFILE.revised_family, abs=0.007)


def test_sectoral_nik_coverage_and_errors(world: World) -> None:
    truth = {(t["source"], t["record_id"]): t for t in pq.read_table(world.truth).to_pylist()}
    for source, id_col, present, wrong_rate in (
        ("dtks", "id_dtks", PROFILE.dtks_nik_present, PROFILE.dtks_nik_wrong),
        ("bpjs", "noka", PROFILE.bpjs_nik_present, PROFILE.bpjs_nik_wrong),
    ):
        rows = pq.read_table(world.dtks if source == "dtks" else world.bpjs).to_pylist()
        known = [(r, truth[(source, r[id_col])]) for r in rows if truth[(source, r[id_col])]["true_nik"]]
        with_nik = [(r, t) for r, t in known if r["nik"] is not None]
        assert len(with_nik) / len(known) == pytest.approx(present, abs=0.02)
        wrong = sum(1 for r, t in with_nik if r["nik"] != t["true_nik"])
        assert wrong / len(with_nik) == pytest.approx(wrong_rate, abs=0.01)
        assert len(known) < len(rows)  # some rows belong to nobody in the master
