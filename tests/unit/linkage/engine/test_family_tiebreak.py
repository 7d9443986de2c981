"""The engine's family tie-break: hand-made families where it decides, and no change without context."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_helpers import make_master, make_queries, members_model

from linkage.engine import Band, BandThresholds, EngineWorkers, LinkageEngine, LinkDecision
from linkage.engine.cache import load_master_cached
from linkage.engine.relatives import RelativeNikRule, discount_pairs
from linkage.normalise.family import Candidate, HeadContext, choose_best, master_heads, member_heads
from linkage.normalise.prepare import prepare_table
from linkage.records import population_records

KK = "3603120101000001"
VILLAGE = "3603122001"
SON, FATHER, WIFE = "3603121505850001", "3603120101600001", "3603124303620001"


def _person(nik: str, name: str, sex: str, dob: str, relationship: str) -> dict[str, Any]:
    return {
        "record_id": nik,
        "nik": nik,
        "kk_number": KK,
        "full_name": name,
        "sex": sex,
        "birth_date": dob,
        "birth_year": int(dob[:4]),
        "village_code": VILLAGE,
        "address": None,
        "relationship": relationship,
    }


# The son comes first: on an exact tie the plain choice is the lowest master row, the son.
FAMILY = [
    _person(SON, "AHMAD FAUZI", "M", "1985-05-15", "ANAK"),
    _person(FATHER, "AHMAD FAUZI", "M", "1960-01-01", "KEPALA KELUARGA"),
    _person(WIFE, "SITI AMINAH", "F", "1962-03-03", "ISTRI"),
]
OTHERS = make_master(1_000, seed=11)


def _engine(master: list[dict[str, Any]]) -> LinkageEngine:
    engine = LinkageEngine.from_model_json(
        members_model(), BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table
    )
    if any("relationship" in r for r in master):  # else: a master without the relationship column
        master = [{**r, "relationship": r.get("relationship")} for r in master]
    engine.master.load(pa.Table.from_pylist(master))
    return engine


@pytest.fixture(scope="module")
def engine() -> LinkageEngine:
    return _engine(FAMILY + OTHERS)


def _member(
    rid: str,
    submission: str | None = "S1",
    head: str | None = "Ahmad Fauzi",
    relationship: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    base = {
        "record_id": rid,
        "nik": None,
        "kk_number": KK,
        "full_name": "AHMAD FAUZI",
        "sex": "M",
        "birth_date": None,
        "birth_year": None,
        "village_code": VILLAGE,
    }
    return {**base, "submission_id": submission, "head_name": head, "relationship": relationship, **fields}


def _weights(engine: LinkageEngine, query: dict[str, Any]) -> dict[str, float]:
    """Every candidate's scored weight for one query, by master record id."""
    scored = engine.scoring.score([query])
    master = engine.master.prepared
    return {
        master.record_id(int(r)): float(w)
        for r, w in zip(scored.master_rows.tolist(), scored.scores.totals.tolist(), strict=True)
    }


def test_two_members_wanting_one_master_record_get_one_each(engine: LinkageEngine) -> None:
    # the father as listed, and the son carrying his father's NIK without a birth date
    father = _member("S1-01", relationship=1, nik=FATHER, birth_date="1960-01-01", birth_year=1960)
    son = _member("S1-02", relationship=3, nik=FATHER)
    alone = [{k: v for k, v in q.items() if k != "submission_id"} | {"head_name": None} for q in (father, son)]
    plain = engine.link(alone)
    assert [d.master_record_id for d in plain] == [FATHER, FATHER]  # the scores alone collide

    first, second = engine.link([father, son])
    assert (first.master_record_id, second.master_record_id) == (FATHER, SON)
    son_weights = _weights(engine, son)
    # the reported weights are the chosen pairs' scored weights; the runner-up is the lost best
    assert first.match_weight == plain[0].match_weight
    assert second.match_weight == son_weights[SON]
    assert second.runner_up_match_weight == son_weights[FATHER] == plain[1].match_weight
    assert second.candidate_count == plain[1].candidate_count == len(son_weights)
    assert second.explanation is not None
    total = second.explanation.prior_match_weight + sum(c.match_weight for c in second.explanation.contributions)
    assert total == pytest.approx(son_weights[SON], abs=1e-9)


def test_member_losing_its_only_candidate_to_a_relative_is_unmatched() -> None:
    engine = _engine([FAMILY[1]])  # the son is not in this master
    father = _member("S1-01", relationship=1, nik=FATHER, birth_date="1960-01-01", birth_year=1960)
    son = _member("S1-02", relationship=3, nik=FATHER)
    first, second = engine.link([father, son])
    assert first.master_record_id == FATHER
    assert second == LinkDecision("S1-02", None, None, None, _weights(engine, son)[FATHER], 1, Band.NO_MATCH, None)


@pytest.mark.parametrize(("relationship", "expected"), [(1, FATHER), (3, SON), (None, SON)])
def test_head_name_decides_between_father_and_son_of_one_name(
    engine: LinkageEngine, relationship: int | None, expected: str
) -> None:
    weights = _weights(engine, _member("S9-01"))
    assert weights[FATHER] == weights[SON]  # nothing in the scores tells them apart
    [decision] = engine.link([_member("S9-01", submission="S9", relationship=relationship)])
    assert decision.master_record_id == expected
    assert decision.match_weight == weights[expected]
    assert decision.runner_up_match_weight == weights[FATHER]


def test_other_head_name_gives_no_evidence_and_keeps_the_plain_choice(engine: LinkageEngine) -> None:
    [plain] = engine.link([_member("S9-01", submission=None, head=None)])
    [other] = engine.link([_member("S9-01", submission="S9", head="Budi Santoso", relationship=1)])
    assert plain.master_record_id == SON  # the lowest master row of the exact tie
    assert other == plain


def test_records_without_family_context_are_unchanged(engine: LinkageEngine) -> None:
    queries = make_queries(OTHERS, 300, seed=12)
    # the same master without Dukcapil relationships (no head evidence at all)
    no_relationship = _engine([{k: v for k, v in r.items() if k != "relationship"} for r in FAMILY + OTHERS])
    before = no_relationship.link(queries)
    assert engine.link(queries) == before
    # and mixed into a batch with families, they still are
    families = [_member("S1-01", relationship=1, nik=FATHER), _member("S1-02", relationship=3, nik=FATHER)]
    mixed = engine.link(families + queries)
    assert mixed[2:] == before
    assert [d.master_record_id for d in mixed[:2]] == [FATHER, SON]


def test_forked_workers_resolve_each_family_in_its_batch(engine: LinkageEngine) -> None:
    father = _member("S1-01", relationship=1, nik=FATHER, birth_date="1960-01-01", birth_year=1960)
    son = _member("S1-02", relationship=3, nik=FATHER)
    batches = [[father, son], make_queries(OTHERS, 50, seed=13), [son, father]]
    expected = [engine.link(b) for b in batches]
    with EngineWorkers(engine, processes=2) as workers:
        assert workers.link_batches(batches) == expected
    assert [d.master_record_id for d in expected[2]] == [SON, FATHER]


def test_same_choices_as_choose_best_over_every_pair() -> None:
    """Families of noisy copies (three per submission, close relatives in the master share a KK): the
    engine's choices and runner-ups are `choose_best`'s over all scored pairs (their weights after the
    relative's-NIK and household rule, `linkage.engine.relatives.discount_pairs`)."""
    rnd = random.Random(21)
    master = [dict(r) for r in make_master(600, seed=21)]
    for start in range(0, len(master), 3):  # KKs of three: the first is the head
        for k, person in enumerate(master[start : start + 3]):
            person["kk_number"] = master[start]["kk_number"]
            person["relationship"] = "KEPALA KELUARGA" if k == 0 else "ANAK"
    engine = _engine(master)
    heads = [master[s]["full_name"] for s in range(0, len(master), 3)]
    queries = make_queries(master, 240, seed=22)[:-1]
    for i, query in enumerate(queries):
        query["submission_id"] = f"S{i // 3}"
        query["head_name"] = rnd.choice(heads) if rnd.random() < 0.5 else master[0]["full_name"]
        query["relationship"] = 1 if i % 3 == 0 else 3
        if i % 3 == 2 and i % 2 == 0:  # a relative's copy: two members compete for one master row
            query.update({k: v for k, v in queries[i - 1].items() if k not in ("record_id", "relationship")})
            query["nik"] = None

    decisions = engine.link(queries)
    scored = engine.scoring.score(queries)
    prepared = engine.master.prepared
    name = {prepared.record_id(r): f"{r:012d}" for r in range(prepared.row_count)}  # ties: lowest row
    totals = scored.scores.totals
    rule = RelativeNikRule.from_parameters(engine.parameters)
    discounted = discount_pairs(rule, scored.query_index, scored.scores.levels, scored.scores.weights, totals)
    if discounted is not None:
        totals = discounted[0]
    pairs = zip(scored.query_index.tolist(), scored.master_rows.tolist(), totals.tolist(), strict=True)
    candidates = [Candidate(queries[i]["record_id"], f"{r:012d}", w, 0.0) for i, r, w in pairs]
    batch = pa.Table.from_pylist(queries)
    masters = {name[rid]: head for rid, head in master_heads(pa.Table.from_pylist(master)).items()}
    group_of = {q["record_id"]: q["submission_id"] for q in queries}
    choices = choose_best(candidates, group_of, HeadContext(member_heads(batch), masters))
    row_of = {v: k for k, v in name.items()}
    plain = engine.link([{k: v for k, v in q.items() if k not in ("submission_id", "head_name")} for q in queries])
    changed = 0
    for query, decision, alone in zip(queries, decisions, plain, strict=True):
        choice = choices.get(query["record_id"])
        chosen = choice.candidate if choice is not None else None
        assert decision.master_record_id == (row_of[chosen.master_record_id] if chosen else None)
        assert decision.match_weight == (chosen.match_weight if chosen else None)
        assert decision.runner_up_match_weight == (choice.runner_up_weight if choice else None)
        changed += decision.master_record_id != alone.master_record_id
    assert changed > 0  # the families did decide some choices


def test_population_master_carries_relationship_through_preparation(tmp_path: Path) -> None:
    """population.parquet layout (as the linker loads it, through the prepared cache): the Dukcapil
    relationship survives `population_records` and the cache, so the head's name still decides."""
    population = tmp_path / "population.parquet"
    keep = ("nik", "kk_number", "full_name", "sex", "birth_date", "village_code", "address", "relationship")
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in keep} for r in FAMILY + OTHERS]), population)
    answers = []
    for hit in (False, True):  # prepared from the file, then read back from the cache
        engine = LinkageEngine.from_model_json(members_model(), BandThresholds(0.99, 0.5), preparer=prepare_table)
        assert (
            load_master_cached(engine, population, cache_dir=tmp_path, version="t", convert=population_records) is hit
        )
        [head] = engine.link([_member("S9-01", submission="S9", relationship=1)])
        [child] = engine.link([_member("S9-02", submission="S9", relationship=3)])
        answers.append((head.master_record_id, child.master_record_id))
    assert answers == [(FATHER, SON), (FATHER, SON)]
