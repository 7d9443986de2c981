"""`LinkageEngine.link`: decisions, bands, explanations, master updates and edge cases."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest
from engine_helpers import make_master, members_model

from linkage.engine import (
    Band,
    BandThresholds,
    EngineError,
    LinkageEngine,
    MasterNotLoadedError,
    read_model_parameters,
)
from linkage.normalise.prepare import prepare_table

MASTER = make_master(3_000, seed=5)


def _engine(thresholds: BandThresholds | None = None) -> LinkageEngine:
    engine = LinkageEngine.from_model_json(
        members_model(), thresholds or BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table
    )
    engine.master.load(pa.Table.from_pylist(MASTER))
    return engine


@pytest.fixture(scope="module")
def engine() -> LinkageEngine:
    return _engine()


def _query(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, "record_id": "Q1", **changes}


def test_exact_copy_links_to_its_master_row(engine: LinkageEngine) -> None:
    person = MASTER[17]
    [decision] = engine.link([_query(person)])
    assert decision.record_id == "Q1"
    assert decision.master_record_id == person["nik"]
    assert decision.band is Band.AUTO_LINK
    assert decision.match_probability is not None and decision.match_probability > 0.99
    assert decision.candidate_count >= 1


def test_explanation_weights_plus_prior_equal_total(engine: LinkageEngine) -> None:
    person = MASTER[42]
    [decision] = engine.link([_query(person, nik=None, full_name=person["full_name"] + "X")])
    assert decision.explanation is not None and decision.match_weight is not None
    explanation = decision.explanation
    params = read_model_parameters(members_model())
    assert explanation.prior_match_weight == pytest.approx(math.log2(1e-4 / (1 - 1e-4)))
    assert [c.comparison for c in explanation.contributions] == [c.name for c in params.comparisons]
    total = explanation.prior_match_weight + sum(c.match_weight for c in explanation.contributions)
    assert total == pytest.approx(decision.match_weight, abs=1e-9)
    by_name = {c.comparison: c for c in explanation.contributions}
    assert by_name["nik"].level == "NIK missing" and by_name["nik"].match_weight == 0.0
    assert by_name["sex"].level == "sex equal"
    assert by_name["name"].tf_adjustment == 0.0  # the TF adjustment only applies on the exact level
    # probability is Splink's 1 / (1 + 2^-w)
    assert decision.match_probability == pytest.approx(1 / (1 + 2 ** (-decision.match_weight)))


def test_exact_name_level_carries_term_frequency_adjustment(engine: LinkageEngine) -> None:
    [decision] = engine.link([_query(MASTER[3])])
    assert decision.explanation is not None
    name = {c.comparison: c for c in decision.explanation.contributions}["name"]
    assert name.level == "normalised name equal"
    assert name.tf_adjustment != 0.0


def test_bands_follow_thresholds() -> None:
    thresholds = BandThresholds(auto_link=0.9, review=0.2)
    assert thresholds.band(0.95) is Band.AUTO_LINK
    assert thresholds.band(0.9) is Band.AUTO_LINK
    assert thresholds.band(0.5) is Band.REVIEW
    assert thresholds.band(0.2) is Band.REVIEW
    assert thresholds.band(0.19) is Band.NO_MATCH
    assert thresholds.band(None) is Band.NO_MATCH
    assert BandThresholds.from_metadata({"thresholds": {"auto_link": 0.95, "review": 0.4}}) == BandThresholds(0.95, 0.4)
    with pytest.raises(EngineError):
        BandThresholds(auto_link=0.3, review=0.6)
    with pytest.raises(EngineError):
        BandThresholds.from_metadata({"version": 1})


def test_band_of_a_weak_candidate_depends_on_thresholds() -> None:
    person = MASTER[7]
    # found only by birth date + sex + village (the name, NIK and KK disagree or are missing)
    weak = _query(person, nik=None, full_name="ZZZ QQQ", kk_number=None)
    strict = _engine(BandThresholds(auto_link=0.999999, review=0.99999)).link([weak])[0]
    lenient = _engine(BandThresholds(auto_link=1e-12, review=1e-12)).link([weak])[0]
    assert strict.match_probability == lenient.match_probability
    assert strict.band is Band.NO_MATCH and strict.master_record_id is not None
    assert lenient.band is Band.AUTO_LINK


def test_empty_batch_gives_no_decisions(engine: LinkageEngine) -> None:
    assert engine.link([]) == []
    assert engine.link(pa.table({"record_id": pa.array([], pa.string())})) == []


def test_all_null_record_is_no_match_not_an_error(engine: LinkageEngine) -> None:
    decisions = engine.link([{"record_id": "EMPTY"}, _query(MASTER[1], record_id="OK")])
    assert [d.record_id for d in decisions] == ["EMPTY", "OK"]
    empty = decisions[0]
    assert empty.band is Band.NO_MATCH
    assert (empty.master_record_id, empty.match_weight, empty.candidate_count) == (None, None, 0)
    assert decisions[1].master_record_id == MASTER[1]["nik"]


def test_upserted_master_row_becomes_linkable_and_removed_one_disappears() -> None:
    engine = _engine()
    newcomer: dict[str, Any] = {
        "record_id": "3603999999990001",
        "nik": "3603999999990001",
        "kk_number": "3603999999990099",
        "full_name": "XAVERIUS NEWCOMER",
        "sex": "M",
        "birth_date": "1999-12-03",
        "birth_year": 1999,
        "village_code": "3603999999",
        "address": None,
    }
    query = _query(newcomer)
    assert engine.link([query])[0].master_record_id is None
    size = len(engine.master)
    engine.master.upsert(newcomer)
    assert len(engine.master) == size + 1
    linked = engine.link([query])[0]
    assert linked.master_record_id == newcomer["nik"] and linked.band is Band.AUTO_LINK
    # replace it (new name): still one live row, and the new version is what scores
    engine.master.upsert({**newcomer, "full_name": "XAVERIUS RENAMED"})
    assert len(engine.master) == size + 1
    renamed = engine.link([_query(newcomer, full_name="XAVERIUS RENAMED")])[0]
    assert renamed.master_record_id == newcomer["nik"]
    assert renamed.match_weight is not None and linked.match_weight is not None
    assert renamed.candidate_count == 1
    # a misspelt query reaches the new row's name through string similarity (appended vocabulary)
    typo = engine.link([_query(newcomer, full_name="XAVERIUS RENAMD")])[0]
    assert typo.master_record_id == newcomer["nik"] and typo.explanation is not None
    name_level = {c.comparison: c.level for c in typo.explanation.contributions}["name"]
    assert name_level.startswith("Jaro-Winkler")
    assert engine.master.remove(newcomer["nik"]) is True
    assert engine.link([query])[0].master_record_id is None
    assert engine.master.remove(newcomer["nik"]) is False
    # an existing master person disappears too
    person = MASTER[99]
    assert engine.link([_query(person)])[0].master_record_id == person["nik"]
    engine.master.remove(str(person["nik"]))
    assert engine.link([_query(person)])[0].master_record_id != person["nik"]


def test_link_before_loading_a_master_is_a_clear_error() -> None:
    engine = LinkageEngine.from_model_json(members_model(), BandThresholds(0.99, 0.5), preparer=prepare_table)
    with pytest.raises(MasterNotLoadedError):
        engine.link([{"record_id": "Q"}])


def test_master_missing_a_model_column_is_refused() -> None:
    engine = LinkageEngine.from_model_json(members_model(), BandThresholds(0.99, 0.5))
    with pytest.raises(EngineError, match="name_key"):
        engine.master.load(pa.table({"record_id": ["1"], "nik": ["1"]}))


def test_many_upserts_all_become_linkable_and_term_frequencies_follow() -> None:
    engine = _engine()
    fresh = [
        {**row, "record_id": f"36039{i:011d}", "nik": f"36039{i:011d}", "full_name": f"ZULKARNAEN {name}"}
        for i, (row, name) in enumerate(zip(MASTER[:60], ["ALPHA", "BETA", "GAMMA"] * 20, strict=True))
    ]
    for row in fresh:
        engine.master.upsert(row)
    assert len(engine.master) == len(MASTER) + 60
    decisions = engine.link([{**row, "record_id": f"Q{i}"} for i, row in enumerate(fresh)])
    assert [d.master_record_id for d in decisions] == [row["nik"] for row in fresh]
    name_tf = engine.master.prepared.columns["name_norm"]
    codes = name_tf.encode(["ZULKARNAEN ALPHA"])
    assert name_tf.term_frequency(codes)[0] == pytest.approx(20 / (len(MASTER) + 60))
    engine.master.remove(fresh[0]["nik"])
    assert name_tf.term_frequency(codes)[0] == pytest.approx(19 / (len(MASTER) + 59))
