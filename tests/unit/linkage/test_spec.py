"""The spec chooser: tables of fill rates -> the comparisons, blocking, EM passes and prior rules chosen."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from linkage.comparisons import BLOCKING_RULES, COMPARISONS, Comparison, ElseLevel, ExactLevel, NullLevel
from linkage.model.training import (
    MAX_MATCHED_SHARE,
    MIN_U_SHARE,
    estimate_prior,
    matched_pair_rate,
    without_matches_in_u,
)
from linkage.normalise.family import Candidate
from linkage.normalise.prepare import PREPARED_SCHEMA
from linkage.spec import (
    FALLBACK_PAIR_BUDGET,
    FILL_FLOOR,
    NotEnoughToLink,
    blocked_pairs,
    choose_spec,
    full_spec,
    spec_for_tables,
    spec_from_metadata,
)

ALL = {c: 1.0 for c in PREPARED_SCHEMA.names}
NAME_DOB = {
    c: 1.0
    for c in (
        "record_id",
        "name_norm",
        "name_concat",
        "name_key",
        "given_name",
        "given_name_key",
        "other_names",
        "birth_date",
        "birth_date_real",
        "birth_date_swapped",
        "birth_year",
    )
}


def test_every_column_filled_gives_the_full_members_spec() -> None:
    spec = choose_spec("members", ALL, ALL)
    assert spec.names == ("nik", "name", "birth_date", "sex", "village", "address", "kk_number")
    assert spec.blocking_rules == BLOCKING_RULES["members"]
    assert spec.em_rules == (("nik",), ("name_key", "birth_year"))
    assert spec.prior_rules == (("nik", "birth_date"), ("name_norm", "birth_date"))
    assert spec.dropped == {}
    assert spec == full_spec("members")


def test_an_empty_nik_column_drops_nik_and_its_rules_and_adds_the_fallback_blocking() -> None:
    records = {**ALL, "nik": 0.0, "nik_consistent": 0.0}
    spec = choose_spec("dtks", ALL, records)
    assert spec.names == ("name", "birth_date", "sex", "village", "address")
    assert ("nik",) not in spec.blocking_rules and ("nik",) not in spec.em_rules
    assert spec.blocking_rules == (
        ("name_key", "birth_date"),
        ("name_key", "birth_year", "district_code"),
        ("given_name_key", "village_code", "birth_year"),
        ("given_name_key", "village_code", "birth_day_month"),
        ("birth_date", "sex", "village_code"),
        ("name_sorted", "district_code"),
        ("name_key", "birth_year"),
        ("birth_date",),
        ("given_name_key", "birth_year"),
        ("name_norm",),
        ("name_sorted",),
        ("addr_place",),
        ("other_names",),
        ("given_name",),
    )
    # sex and village first (name key + birth year leaves them active), then name, then the birth date
    assert spec.em_rules == (("name_key", "birth_year"), ("birth_date",), ("name_norm",))
    assert spec.prior_rules == (("name_norm", "birth_date"),)
    assert spec.dropped["nik"] == "nik filled 100% in the master, 0% in the records (floor 20%)"


def test_name_and_birth_date_only() -> None:
    spec = choose_spec("dtks", NAME_DOB, NAME_DOB)
    assert spec.names == ("name", "birth_date")
    assert spec.blocking_rules == (
        ("name_key", "birth_date"),
        ("name_key", "birth_year"),
        ("birth_date",),
        ("given_name_key", "birth_year"),
        ("name_norm",),
        ("other_names",),
        ("given_name",),
    )
    assert spec.em_rules == (("birth_date",), ("name_norm",))
    assert set(spec.dropped) == {"nik", "sex", "village", "address"}


@pytest.mark.parametrize(
    ("fill", "kept"),
    [(FILL_FLOOR, True), (FILL_FLOOR - 0.01, False), (0.0, False), (1.0, True)],
)
def test_the_fill_floor_applies_to_the_worse_filled_input(fill: float, kept: bool) -> None:
    master = {**NAME_DOB, "village_code": 1.0, "district_code": 1.0}
    records = {**NAME_DOB, "village_code": fill, "district_code": fill}
    assert ("village" in choose_spec("dtks", master, records).names) is kept
    assert ("village" in choose_spec("dtks", records, master).names) is kept


@pytest.mark.parametrize(
    ("fill", "missing"),
    [
        ({c: 1.0 for c in ("name_norm", "name_concat", "name_key", "given_name_key")}, "birth_date"),
        ({"birth_date": 1.0, "birth_year": 1.0, "birth_date_real": 1.0}, "name"),
        ({}, "name"),
    ],
)
def test_too_little_to_link_names_what_is_missing(fill: dict[str, float], missing: str) -> None:
    with pytest.raises(NotEnoughToLink) as e:
        choose_spec("dtks", fill, fill)
    message = str(e.value)
    assert message.startswith("too little to link")
    assert "\n" not in message
    assert missing in message.split("missing or under 20% filled:")[1]


def test_without_a_usable_blocking_rule_or_training_pass() -> None:
    fill = {"nik": 1.0, "nik_consistent": 1.0, "sex": 1.0}
    # NIK blocks, but no pass can learn NIK's own m (every pair of the NIK pass agrees on it)
    with pytest.raises(NotEnoughToLink, match="no training pass can learn nik"):
        choose_spec("dtks", fill, fill)
    fill = {"sex": 1.0, "village_code": 1.0}
    with pytest.raises(NotEnoughToLink, match="no blocking rule can be used"):
        choose_spec("dtks", fill, fill)


def test_a_comparison_added_later_is_chosen_by_its_null_level(monkeypatch: pytest.MonkeyPatch) -> None:
    # a made-up comparison over a column no other comparison reads (the real address one reads addr_place)
    dwelling = Comparison(
        "dwelling",
        (NullLevel(("household_key",)), ExactLevel("household_key"), ElseLevel()),
    )
    monkeypatch.setitem(COMPARISONS, "dtks", (*COMPARISONS["dtks"], dwelling))
    filled = {**NAME_DOB, "household_key": 0.9}
    assert choose_spec("dtks", filled, filled).names == ("name", "birth_date", "dwelling")
    spec = choose_spec("dtks", NAME_DOB, NAME_DOB)
    assert "dwelling" in spec.dropped
    # with the dwelling active, the birth-date pass leaves two comparisons and is no longer a weak one
    assert choose_spec("dtks", filled, filled).em_rules == (("birth_date",), ("name_norm",))


def test_the_spec_round_trips_through_the_metadata() -> None:
    spec = choose_spec("dtks", NAME_DOB, {**NAME_DOB, "sex": 0.5})
    assert spec_from_metadata({"source": "dtks", "spec": spec.to_metadata()}) == spec
    assert spec_from_metadata({"source": "members"}) == full_spec("members")  # older artefacts
    with pytest.raises(ValueError, match="does not know: shoe_size"):
        spec_from_metadata({"source": "dtks", "spec": {**spec.to_metadata(), "comparisons": ["shoe_size"]}})


def test_estimate_prior_gives_the_record_level_match_rate() -> None:
    # 1,000 master records, 100 records: 80 have one overwhelming candidate, 20 have none.
    prior = 1e-5
    weight = math.log2(prior / (1 - prior)) + 40
    candidates = [Candidate(f"r{i}", f"m{i}", weight, 1.0) for i in range(80)]
    estimated = estimate_prior(candidates, prior, master_rows=1000, record_rows=100)
    odds = estimated / (1 - estimated)
    assert odds == pytest.approx(0.8 / (0.2 * 1000), rel=1e-3)
    # a weak candidate (Bayes factor 1) barely moves the rate: it is most likely not the match
    weak = [*candidates, Candidate("r99", "m99", math.log2(prior / (1 - prior)), 0.0)]
    assert estimate_prior(weak, prior, 1000, 100) == pytest.approx(estimated, rel=0.01)
    assert estimate_prior([], prior, 1000, 100) == prior


def test_estimate_prior_caps_the_matched_share() -> None:
    prior = 1e-3
    weight = math.log2(prior / (1 - prior)) + 40
    every = [Candidate(f"r{i}", f"m{i}", weight, 1.0) for i in range(100)]  # every record matched
    estimated = estimate_prior(every, prior, master_rows=400, record_rows=100)
    assert estimated / (1 - estimated) == pytest.approx(MAX_MATCHED_SHARE / ((1 - MAX_MATCHED_SHARE) * 400))


def test_matches_are_taken_out_of_the_sampled_u() -> None:
    model = {
        "probability_two_random_records_match": 0.5,
        "comparisons": [
            {
                "output_column_name": "dob",
                "comparison_levels": [
                    {"sql_condition": "x IS NULL", "is_null_level": True},
                    {"sql_condition": "a", "m_probability": 0.9, "u_probability": 2.0e-4},
                    {"sql_condition": "b", "m_probability": 0.05, "u_probability": 1.0e-4},
                    {"sql_condition": "ELSE", "m_probability": 0.05, "u_probability": 1 - 3.0e-4},
                ],
            }
        ],
    }
    out = without_matches_in_u(model, rate=1.7e-4)
    levels = out["comparisons"][0]["comparison_levels"]
    u = [lv["u_probability"] for lv in levels[1:]]
    assert sum(u) == pytest.approx(1.0)
    # 2.0e-4 - 1.7e-4 * 0.9 = 4.7e-5 (then renormalised by a factor of about 1)
    assert u[0] == pytest.approx(4.7e-5 / (1 - 1.7e-4), rel=1e-3)
    # a level the matches would explain entirely keeps MIN_U_SHARE of its sampled u
    tiny = without_matches_in_u(model, rate=1e-2)["comparisons"][0]["comparison_levels"]
    assert tiny[1]["u_probability"] == pytest.approx(MIN_U_SHARE * 2.0e-4, rel=0.02)
    assert (
        "u_probability" not in levels[0] and model["comparisons"][0]["comparison_levels"][1]["u_probability"] == 2.0e-4
    )
    # rate from the record-level prior: odds pi / ((1 - pi) N) with N = 1000, pi = 0.8
    odds = 0.8 / (0.2 * 1000)
    assert matched_pair_rate({"probability_two_random_records_match": odds / (1 + odds)}, 1000) == pytest.approx(
        0.8 / 1000
    )


def test_blocked_pairs_counts_equal_non_null_keys() -> None:
    master = pa.table({"a": ["x", "x", "y", None], "b": [1, 1, 2, 3]})
    records = pa.table({"a": ["x", "y", "y", None], "b": [1, 2, 5, 3]})
    assert blocked_pairs(master, records, ("a",)) == 2 * 1 + 1 * 2  # NULLs never pair
    assert blocked_pairs(master, records, ("a", "b")) == 2 + 1
    assert blocked_pairs(master, records, ("missing",)) == 0


def test_a_fallback_rule_over_the_pair_budget_is_left_out() -> None:
    from linkage.normalise.prepare import prepare_table
    from linkage.records import LINKAGE_COLUMNS, LINKAGE_SCHEMA

    def table(rows: list[dict[str, object]]) -> pa.Table:
        return pa.Table.from_pylist([{c: r.get(c) for c in LINKAGE_COLUMNS} for r in rows], schema=LINKAGE_SCHEMA)

    # every person of one kampung (no RT): the address pairs each record with the whole master
    people = FALLBACK_PAIR_BUDGET + 5

    def person(prefix: str, i: int, address: str) -> dict[str, object]:
        name, born = f"Budi {chr(65 + i % 26)}{i}", f"19{50 + i}-01-0{1 + i % 9}"
        return {"record_id": f"{prefix}{i}", "full_name": name, "birth_date": born, "address": address}

    master = table([person("m", i, "Kp. Sukamaju") for i in range(people)])
    records = table([person("r", i, "Kampung Sukamaju") for i in range(people)])
    pm, pr = prepare_table(master), prepare_table(records)
    assert blocked_pairs(pm, pr, ("addr_place",)) == people * people
    spec = spec_for_tables("dtks", pm, pr)
    assert ("addr_place",) not in spec.blocking_rules  # people per record > the budget
    assert ("given_name",) not in spec.blocking_rules  # every given name is Budi
    assert ("name_sorted",) in spec.blocking_rules and ("other_names",) in spec.blocking_rules
    few = spec_for_tables("dtks", pm.slice(0, 3), pr.slice(0, 3))
    assert ("addr_place",) in few.blocking_rules


def test_without_regions_the_fallback_rules_replace_the_region_bounded_ones() -> None:
    # A file with NIKs but no village codes (no crosswalk): the rules bounded by a village or district
    # reach nothing, so a member whose NIK is wrong needs the wider name-and-date rules.
    records = {**ALL, "village_code": 0.0, "district_code": 0.0}
    spec = choose_spec("members", ALL, records)
    assert "village" not in spec.names
    assert spec.blocking_rules == (
        ("nik",),
        ("name_key", "birth_date"),
        ("kk_number",),
        ("name_key", "birth_year"),
        ("birth_date",),
        ("given_name_key", "birth_year"),
        ("name_norm",),
        ("name_sorted",),
        ("addr_place",),
        ("other_names",),
        ("given_name",),
    )
    # Over the pair budget a fallback rule is still left out.
    narrow = choose_spec("members", ALL, records, too_wide=frozenset({("birth_date",), ("given_name",)}))
    assert ("birth_date",) not in narrow.blocking_rules and ("given_name",) not in narrow.blocking_rules
    assert ("name_key", "birth_year") in narrow.blocking_rules


@pytest.mark.parametrize(("district_fill", "fallback"), [(1.0, False), (0.9, False), (0.85, True), (0.3, True)])
def test_many_records_without_a_district_get_the_fallback_rules(district_fill: float, fallback: bool) -> None:
    records = {**ALL, "district_code": district_fill}
    spec = choose_spec("members", ALL, records)
    assert (("name_key", "birth_year") in spec.blocking_rules) is fallback
    assert (("name_key", "birth_year", "district_code") in spec.blocking_rules) is (district_fill >= FILL_FLOOR)
