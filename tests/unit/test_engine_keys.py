"""`linkage.engine.keys` / `LinkageEngine.query_keys` / `master_keys`: a query and a master record share a
blocking-key hash exactly when one of the model's blocking rules pairs them; null keys give no hash."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest

from linkage.engine import BandThresholds, LinkageEngine
from linkage.engine.keys import BlockingKeys, fnv1a_64
from linkage.normalise.prepare import prepare_table
from tests.unit.linkage.engine.engine_helpers import make_master, make_queries, members_model

MASTER = make_master(600, seed=17)
QUERIES = make_queries(MASTER, 400, seed=23)


@pytest.fixture(scope="module")
def engine() -> LinkageEngine:
    engine = LinkageEngine.from_model_json(
        members_model(), BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table
    )
    engine.master.load(pa.Table.from_pylist(MASTER))
    return engine


def _pairs_by_keys(query_keys: list[tuple[int, ...]], master_keys: list[tuple[int, ...]]) -> set[tuple[int, int]]:
    rows_of: dict[int, list[int]] = defaultdict(list)
    for row, keys in enumerate(master_keys):
        for key in keys:
            rows_of[key].append(row)
    return {(q, r) for q, keys in enumerate(query_keys) for key in keys for r in rows_of[key]}


def test_fnv1a_is_the_published_function_so_stored_hashes_stay_valid() -> None:
    # FNV-1a 64 test vectors: "" -> offset basis, "a", "foobar"
    got = fnv1a_64(pa.array(["", "a", "foobar", None])).tolist()
    assert got == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8, 0xCBF29CE484222325]


def test_cross_column_rule_pairs_query_left_with_master_right() -> None:
    keys = BlockingKeys([(("given_name_key", "name_key"), ("birth_year", "birth_year"))])
    query = pa.table(
        {"given_name_key": ["NRLJ", "NRLJ", None], "name_key": ["XX", "XX", "NRLJ"], "birth_year": [1980, 1981, 1980]}
    )
    master = pa.table({"given_name_key": ["ZZ", "NRLJ"], "name_key": ["NRLJ", "ZZ"], "birth_year": [1980, 1980]})
    q, m = keys.of_queries(query), keys.of_master(master)
    assert [len(k) for k in q] == [1, 1, 0]  # a NULL part: no hash
    assert [len(k) for k in m] == [1, 1]
    assert _pairs_by_keys(q, m) == {(0, 0)}  # query given_name_key = master name_key, same year


def test_null_or_missing_columns_give_no_hash_and_types_are_told_apart() -> None:
    keys = BlockingKeys([(("a", "a"),), (("a", "a"), ("b", "b"))])
    table = pa.table({"a": ["1980", None, "x"], "b": [None, "y", "y"]})
    assert [len(k) for k in keys.of_queries(table)] == [1, 0, 2]
    assert keys.of_queries(pa.table({"b": ["y"]})) == [()]  # the rule's column is absent
    as_text = keys.of_queries(pa.table({"a": ["1980"]}))
    as_int = keys.of_master(pa.table({"a": pa.array([1980], pa.int64())}))
    as_float = keys.of_master(pa.table({"a": pa.array([1980.0], pa.float64())}))
    assert set(as_text[0]).isdisjoint(as_int[0])  # "1980" != 1980, as for the engine's codes
    assert as_int == as_float  # 1980 == 1980.0
    assert keys.of_queries(pa.table({"a": pa.array([None], pa.null())})) == [()]


def test_hashes_pair_exactly_the_engines_candidates(engine: LinkageEngine) -> None:
    query = engine.scoring.prepare(QUERIES)
    q_idx, rows = engine.scoring.candidates(query)
    engine_pairs = set(zip(q_idx.tolist(), rows.tolist(), strict=True))
    master_keys = [engine.master_keys(r) for r in MASTER]
    query_keys = engine.query_keys(QUERIES)
    assert query_keys[-1] == ()  # the all-null record
    assert _pairs_by_keys(query_keys, master_keys) == engine_pairs
    # rule by rule, against the rule's own index lookup (collisions dropped as `candidates` does)
    master = engine.master.prepared
    prepared_master = prepare_table(pa.Table.from_pylist(MASTER))
    for rule, index in zip(master.params.blocking_rules, master.rules, strict=True):
        q, r = index.lookup([query.codes(left, right) for left, right in rule])
        keep = (q >= 0) & (r >= 0)
        for left, right in rule:
            keep &= query.codes(left, right)[q] == master.columns[right].codes[r]
        by_rule = set(zip(q[keep].tolist(), r[keep].tolist(), strict=True))
        assert len(by_rule) >= 20, rule  # each rule pairs records on this world
        one = BlockingKeys([rule])
        assert _pairs_by_keys(one.of_queries(query.prepared), one.of_master(prepared_master)) == by_rule


def test_link_with_keys_and_upsert_return_the_same_hashes(engine: LinkageEngine) -> None:
    decisions, keys = engine.link_with_keys(QUERIES[:50])
    assert decisions == engine.link(QUERIES[:50])
    assert keys == engine.query_keys(QUERIES[:50])
    assert engine.link_with_keys([]) == ([], [])


def test_hashes_stored_before_an_upsert_find_the_new_master_record() -> None:
    # A query whose name the master has never seen (unseen code): its hashes, taken now, must meet
    # those of a master record with that name upserted later, as the engine's lookup then does.
    eng = LinkageEngine.from_model_json(
        members_model(), BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table
    )
    eng.master.load(pa.Table.from_pylist(MASTER))
    rnd = random.Random(3)
    born: dict[str, Any] = {
        "record_id": "3603122005239999",
        "nik": "3603122005239999",
        "kk_number": "3603120000000001",
        "full_name": "QWERTZIA XYLOPHONA",
        "sex": "F",
        "birth_date": "2023-05-20",
        "birth_year": 2023,
        "village_code": "3603122001",
        "address": None,
    }
    member = {
        **born,
        "record_id": "Q-born",
        "nik": None,
        "kk_number": None,
        "full_name": "QWERTZIAH XYLOFONA",
        "birth_date": f"2023-0{rnd.randint(6, 9)}-11",
        "sex": None,
    }
    stored = eng.query_keys([member])[0]
    assert stored  # name key + birth year at least
    before = eng.scoring.candidates(eng.scoring.prepare([member]))
    assert len(before[0]) == 0
    upserted = eng.master.upsert(born)
    assert upserted == eng.master_keys(born)
    assert set(stored) & set(upserted)  # the shared phonetic name key + birth year
    q_idx, rows = eng.scoring.candidates(eng.scoring.prepare([member]))
    assert [eng.master.prepared.record_id(r) for r in rows.tolist()] == [born["nik"]]
    stranger = {**member, "full_name": "ABCDE FGHIJ", "village_code": None}
    assert not set(eng.query_keys([stranger])[0]) & set(upserted)
