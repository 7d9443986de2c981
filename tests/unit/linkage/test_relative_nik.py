"""A survey record carrying a relative's NIK is not linked to the NIK's holder (engine and batch path)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent / "engine"))
from engine_helpers import make_master, members_model  # noqa: E402

from linkage.batch import link_file  # noqa: E402
from linkage.engine import Band, BandThresholds, LinkageEngine  # noqa: E402
from linkage.engine.decisions import match_probability  # noqa: E402
from linkage.engine.relatives import EXPLANATION, HOUSEHOLD_EXPLANATION, RelativeNikRule  # noqa: E402
from linkage.model.artefact import ModelArtefact  # noqa: E402
from linkage.normalise.prepare import prepare_table  # noqa: E402
from linkage.records import LINKAGE_COLUMNS  # noqa: E402

VILLAGE = "3603122001"
KK = "3603121705150003"
# The holder of the NIK (head of the KK) and his wife, whose record the survey writes with HIS NIK.
HOLDER = {
    "record_id": "3603121204700001",
    "nik": "3603121204700001",
    "kk_number": KK,
    "full_name": "Ahmad Fauzi",
    "sex": "M",
    "birth_date": "1970-04-12",
    "birth_year": 1970,
    "village_code": VILLAGE,
    "address": "Kp. Sukamaju RT 003 RW 009",
}
WIFE = {
    **HOLDER,
    "record_id": "3603124203750002",
    "nik": "3603124203750002",
    "full_name": "Siti Aminah",
    "sex": "F",
    "birth_date": "1975-03-02",
    "birth_year": 1975,
}
QUERY = {**WIFE, "record_id": "Q1", "nik": HOLDER["nik"], "full_name": "SITI AMINAH"}
STRANGER = {
    **QUERY,
    "record_id": "Q2",
    "nik": None,
    "full_name": "Budi Santoso",
    "sex": "M",
    "birth_date": "1988-01-09",
}
PLAIN = {**HOLDER, "record_id": "Q3", "full_name": "Ahmad Fauzy"}  # the holder himself, one typo


def _model() -> dict[str, Any]:
    """The spec's members model (fixed m/u) with NIK levels as strong, and a name and birth date that
    disagree as mild, as in a trained model: an equal NIK, or a whole household's evidence, then outweighs
    them, which is what the rule is for."""
    model = members_model()
    levels = model["comparisons"][0]["comparison_levels"]
    for level, (m, u) in zip(levels[1:], [(0.75, 1e-13), (0.05, 1e-13), (0.02, 1e-6), (0.18, 0.999998)], strict=True):
        level["m_probability"], level["u_probability"] = m, u
    for c in (1, 2):  # name, birth date: the ELSE level
        else_level = model["comparisons"][c]["comparison_levels"][-1]
        else_level["m_probability"], else_level["u_probability"] = 0.04, 0.9
    for c in (4, 5, 6):  # village, address, KK: the top level as strong as trained
        top = model["comparisons"][c]["comparison_levels"][1]
        top["m_probability"], top["u_probability"] = 0.9, 5e-5
    return model


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in LINKAGE_COLUMNS} for r in rows])


def _master(with_wife: bool) -> pa.Table:
    filler = [r for r in make_master(2_000, seed=5) if r["nik"] not in (HOLDER["nik"], WIFE["nik"])]
    return _table([HOLDER, *([WIFE] if with_wife else []), *filler])


def _engine(master: pa.Table) -> LinkageEngine:
    engine = LinkageEngine.from_model_json(_model(), BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table)
    engine.master.load(master)
    return engine


def test_the_rule_reads_the_spec_model() -> None:
    rule = RelativeNikRule.from_model(members_model())
    assert rule is not None
    assert (rule.nik, rule.name, rule.birth) == (0, 1, 2)
    assert rule.nik_equal == frozenset({1, 2})  # NIK equal (consistent or not)
    assert (rule.name_contradicts, rule.birth_contradicts) == (frozenset({9}), frozenset({0, 8}))  # ELSE (and null)
    assert rule.applies([1, 9, 8, 1, 1, 1, 1]) and rule.applies([2, 9, 0, 1, 1, 1, 1])
    assert not rule.applies([3, 9, 8, 1, 1, 1, 1])  # NIK one typo apart: not the same NIK
    assert not rule.applies([1, 8, 8, 1, 1, 1, 1])  # names somewhat alike
    assert not rule.applies([1, 9, 1, 1, 1, 1, 1])  # same birth date


def test_engine_links_the_relative_not_the_holder_and_says_why() -> None:
    engine = _engine(_master(with_wife=True))
    by_id = _plain_totals(engine)
    decisions = {d.record_id: d for d in engine.link(_table([QUERY, PLAIN]))}
    wife = decisions["Q1"]
    assert wife.master_record_id == WIFE["nik"]
    assert wife.explanation is not None
    nik = wife.explanation.contributions[0]
    assert (nik.comparison, nik.level, nik.match_weight) == ("nik", EXPLANATION, 0.0)
    assert wife.match_weight == pytest.approx(by_id[WIFE["nik"]] - _nik_weight(engine, "Q1", WIFE["nik"]))
    # the holder's own record is untouched by the rule
    holder = decisions["Q3"]
    assert holder.master_record_id == HOLDER["nik"] and holder.band is Band.AUTO_LINK
    assert holder.explanation is not None and holder.explanation.contributions[0].level != EXPLANATION


def _plain_totals(engine: LinkageEngine) -> dict[str, float]:
    """Splink's weight of each candidate pair of QUERY (before the rule)."""
    scored = engine.scoring.score(_table([QUERY]))
    rows = [engine.master.prepared.record_id(r) for r in scored.master_rows.tolist()]
    return dict(zip(rows, scored.scores.totals.tolist(), strict=True))


def _nik_weight(engine: LinkageEngine, query_id: str, master_id: str) -> float:
    scored = engine.scoring.score(_table([QUERY]))
    for pos, row in enumerate(scored.master_rows.tolist()):
        if engine.master.prepared.record_id(row) == master_id:
            return float(scored.scores.weights[0, pos])
    raise AssertionError(f"{master_id} is not a candidate of {query_id}")


def test_engine_never_auto_links_the_holder_when_the_relative_is_absent() -> None:
    engine = _engine(_master(with_wife=False))
    assert match_probability(_plain_totals(engine)[HOLDER["nik"]]) >= 0.99  # Splink alone: an auto-link
    (decision,) = engine.link(_table([QUERY]))
    assert decision.band is not Band.AUTO_LINK
    if decision.master_record_id == HOLDER["nik"]:
        assert decision.explanation is not None
        assert decision.explanation.contributions[0].level == EXPLANATION


@pytest.mark.parametrize("with_wife", [True, False])
def test_batch_path_applies_the_same_rule(with_wife: bool) -> None:
    artefact = ModelArtefact(_model(), {"thresholds": {"auto_link": 0.99, "review": 0.5}})
    links, _ = link_file(_master(with_wife), _table([QUERY, PLAIN, STRANGER]), artefact=artefact)
    out = {r["record_id"]: r for r in links.to_pylist()}
    if with_wife:
        assert out["Q1"]["master_record_id"] == WIFE["nik"]
    else:
        assert out["Q1"]["band"] != "auto_link"
    assert (out["Q3"]["master_record_id"], out["Q3"]["band"]) == (HOLDER["nik"], "auto_link")
    # the engine and the batch path agree on the weights after the rule
    engine = {d.record_id: d for d in _engine(_master(with_wife)).link(_table([QUERY, PLAIN]))}
    for rid in ("Q1", "Q3"):
        assert out[rid]["master_record_id"] == engine[rid].master_record_id
        assert out[rid]["match_weight"] == pytest.approx(engine[rid].match_weight, abs=1e-6)
        assert out[rid]["band"] == engine[rid].band.value


NEWBORN = {
    **WIFE,
    "record_id": "Q4",
    "nik": None,
    "full_name": "Putri Ramadhani",
    "birth_date": "2022-10-07",
    "birth_year": 2022,
}


def test_a_household_match_alone_is_never_an_auto_link() -> None:
    """A newborn of the house shares KK, address, village and sex with the wife, nothing personal."""
    engine = _engine(_master(with_wife=True))
    scored = engine.scoring.score(_table([NEWBORN]))
    rows = [engine.master.prepared.record_id(r) for r in scored.master_rows.tolist()]
    plain = dict(zip(rows, scored.scores.totals.tolist(), strict=True))
    assert match_probability(plain[WIFE["nik"]]) >= 0.99  # Splink's weights alone: an auto-link
    (decision,) = engine.link(_table([NEWBORN]))
    # the household's weights (village, address, KK) are taken out: same household, another person
    assert decision.master_record_id == WIFE["nik"] and decision.band is Band.NO_MATCH
    assert decision.explanation is not None
    by_name = {c.comparison: c for c in decision.explanation.contributions}
    household = [by_name[n] for n in ("village", "address", "kk_number")]
    pos = rows.index(WIFE["nik"])
    names = [c.name for c in engine.parameters.comparisons]
    raw = [float(scored.scores.weights[names.index(n), pos]) for n in ("village", "address", "kk_number")]
    for contribution, weight in zip(household, raw, strict=True):  # agreeing parts out, others kept
        expected = (HOUSEHOLD_EXPLANATION, 0.0) if weight > 0 else (contribution.level, weight)
        assert (contribution.level, contribution.match_weight) == expected
    taken = sum(w for w in raw if w > 0)
    assert taken > 10 and decision.match_weight == pytest.approx(plain[WIFE["nik"]] - taken, abs=1e-9)
    assert decision.match_probability is not None and decision.match_probability < 0.5
    artefact = ModelArtefact(_model(), {"thresholds": {"auto_link": 0.99, "review": 0.5}})
    links, _ = link_file(_master(with_wife=True), _table([NEWBORN]), artefact=artefact)
    (row,) = links.to_pylist()
    assert (row["master_record_id"], row["band"]) == (WIFE["nik"], "no_match")
    assert row["match_weight"] == pytest.approx(decision.match_weight, abs=1e-6)
