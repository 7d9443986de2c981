"""Level conditions: parsed from Splink SQL, and evaluated exactly like DuckDB evaluates them."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from linkage.engine.conditions import (
    AbsDiffAtMost,
    AllOf,
    AnyOf,
    Condition,
    DamerauLevenshteinAtMost,
    Equal,
    IsNull,
    JaroWinklerAtLeast,
    Otherwise,
    parse_blocking_rule,
    parse_condition,
)
from linkage.engine.errors import UnsupportedModelError
from linkage.engine.master import PreparedMaster
from linkage.engine.params import ComparisonParameters, LevelParameters, ModelParameters
from linkage.engine.scoring import PairScorer, QueryBatch


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('"nik_l" IS NULL OR "nik_r" IS NULL', IsNull((("nik", "l"), ("nik", "r")))),
        ("nik_l IS NULL OR nik_r IS NULL", IsNull((("nik", "l"), ("nik", "r")))),
        ('"name_norm_l" = "name_norm_r"', Equal("name_norm", "name_norm")),
        (
            "(birth_date_swapped_l = birth_date_r) OR (birth_date_l = birth_date_swapped_r)",
            AnyOf((Equal("birth_date_swapped", "birth_date"), Equal("birth_date", "birth_date_swapped"))),
        ),
        ('jaro_winkler_similarity("n_l", "n_r") >= 0.94', JaroWinklerAtLeast("n", 0.94)),
        ('jaro_winkler_similarity("n_l", "n_r", 0.9) >= 0.9', JaroWinklerAtLeast("n", 0.9, 0.9)),
        ('damerau_levenshtein("nik_l", "nik_r") <= 1', DamerauLevenshteinAtMost("nik", 1)),
        ('ABS("birth_year_l" - "birth_year_r") <= 1', AbsDiffAtMost("birth_year", 1)),
        ('("nik_l" = "nik_r") AND ("c_l" = "c_r")', AllOf((Equal("nik", "nik"), Equal("c", "c")))),
        ("ELSE", Otherwise()),
    ],
)
def test_parse_condition(sql: str, expected: Condition) -> None:
    assert parse_condition(sql) == expected


@pytest.mark.parametrize("sql", ["levenshtein(a_l, a_r) <= 2", "a_l > a_r", "substr(a_l, 1, 2) = substr(a_r, 1, 2)"])
def test_unsupported_condition_is_refused(sql: str) -> None:
    with pytest.raises(UnsupportedModelError):
        parse_condition(sql)


def test_parse_blocking_rule() -> None:
    assert parse_blocking_rule('(l."name_key" = r."name_key") AND (l."birth_year" = r."birth_year")') == (
        ("name_key", "name_key"),
        ("birth_year", "birth_year"),
    )
    with pytest.raises(UnsupportedModelError):
        parse_blocking_rule('l."a" = r."b" OR l."c" = r."c"')


def _random_pairs(n: int, seed: int) -> tuple[list[str | None], list[str | None]]:
    """Similar and dissimilar name pairs, with nulls and a few non-ASCII letters."""
    rnd = random.Random(seed)
    words = [
        "SITI",
        "SITY",
        "MUHAMAD",
        "MUHAMMAD",
        "NURHAYATI",
        "NUR HAYATI",
        "AGUS",
        "AGUSTINUS",
        "DEWI",
        "DEWY",
        "ANDRÉ",
        "ANDRE",
        "WAHYUDI",
        "WAHYUDIN",
        "A",
        "AB",
        "BA",
        "3603121505800002",
    ]
    left: list[str | None] = []
    right: list[str | None] = []
    for _ in range(n):
        a = rnd.choice(words)
        b = rnd.choice(words)
        if rnd.random() < 0.4:  # near copies: swaps, deletions, substitutions
            chars = list(a)
            i = rnd.randrange(len(chars))
            op = rnd.randrange(3)
            if op == 0 and i + 1 < len(chars):
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
            elif op == 1:
                chars[i] = rnd.choice("AEIOUNY")
            elif len(chars) > 1:
                del chars[i]
            b = "".join(chars)
        left.append(None if rnd.random() < 0.05 else a)
        right.append(None if rnd.random() < 0.05 else b)
    return left, right


def _evaluate(condition: Condition, column: str, left: list[str | None], right: list[str | None]) -> np.ndarray:
    """Evaluate a condition on aligned query/master values through the engine's scorer."""
    params = ModelParameters(
        1e-4,
        (ComparisonParameters("c", (LevelParameters("x", condition, False, 0.0),)),),
        (((column, column),),),
        "record_id",
    )
    master = pa.table({"record_id": [str(i) for i in range(len(right))], column: right})
    prepared = PreparedMaster(params, master, "record_id")
    batch = QueryBatch(pa.table({"record_id": [str(i) for i in range(len(left))], column: left}), prepared)
    idx = np.arange(len(left), dtype=np.int64)
    return PairScorer(prepared, batch, idx, idx).holds(condition, idx)


def _duckdb_truth(sql: str, left: list[str | None], right: list[str | None]) -> np.ndarray:
    con = duckdb.connect()
    con.register("pairs", pa.table({"n_l": left, "n_r": right, "i": list(range(len(left)))}))
    rows = con.sql(f"select coalesce({sql}, false) from pairs order by i").fetchall()
    return np.array([r[0] for r in rows], dtype=bool)


@pytest.mark.parametrize("threshold", [0.7, 0.85, 0.88, 0.9, 0.94, 0.96])
def test_jaro_winkler_matches_duckdb(threshold: float) -> None:
    left, right = _random_pairs(3_000, seed=int(threshold * 100))
    sql = f"jaro_winkler_similarity(n_l, n_r) >= {threshold}"
    assert (_evaluate(parse_condition(sql), "n", left, right) == _duckdb_truth(sql, left, right)).all()


def test_jaro_winkler_cutoff_equal_to_similarity_is_zero_like_duckdb() -> None:
    # DuckDB's 3-argument form may return 0.0 when the similarity equals the cutoff exactly
    # (it does for SITI/SITY, not for AGUS/AGUSTINUS): pairs on the boundary must follow DuckDB.
    left, right = _random_pairs(3_000, seed=7)
    left += ["SITI", "AGUS"]
    right += ["SITY", "AGUSTINUS"]
    cut = duckdb.connect().sql("select jaro_winkler_similarity('SITI', 'SITY')").fetchall()[0][0]
    sql = f"jaro_winkler_similarity(n_l, n_r, {cut!r}) >= {cut!r}"
    engine = _evaluate(parse_condition(sql), "n", left, right)
    assert (engine == _duckdb_truth(sql, left, right)).all()
    plain = _evaluate(parse_condition(f"jaro_winkler_similarity(n_l, n_r) >= {cut!r}"), "n", left, right)
    assert (plain & ~engine).any()  # the pairs sitting exactly on the cutoff flip


@pytest.mark.parametrize("distance", [1, 2])
def test_damerau_levenshtein_matches_duckdb(distance: int) -> None:
    left, right = _random_pairs(3_000, seed=distance)
    sql = f"damerau_levenshtein(n_l, n_r) <= {distance}"
    assert (_evaluate(parse_condition(sql), "n", left, right) == _duckdb_truth(sql, left, right)).all()


def test_null_and_unseen_values_follow_sql() -> None:
    left = ["A", None, "UNSEEN", "B", None]
    right = ["A", "A", "A", None, None]
    assert _evaluate(Equal("n", "n"), "n", left, right).tolist() == [True, False, False, False, False]
    null = IsNull((("n", "l"), ("n", "r")))
    assert _evaluate(null, "n", left, right).tolist() == [False, True, False, True, True]
    any_of = AnyOf((Equal("n", "n"), IsNull((("n", "l"),))))
    assert _evaluate(any_of, "n", left, right).tolist() == [True, True, False, False, True]
    assert _evaluate(Otherwise(), "n", left, right).all()


def test_damerau_levenshtein_one_on_nik_like_strings_matches_duckdb() -> None:
    # equal-length IDs take the engine's "more than two differing positions" shortcut
    rnd = random.Random(16)
    left: list[str | None] = []
    right: list[str | None] = []
    for _ in range(3_000):
        nik = "".join(rnd.choice("0123456789") for _ in range(16))
        other = list(nik)
        for _ in range(rnd.choice((0, 1, 1, 2, 3))):
            i = rnd.randrange(len(other) - 1)
            op = rnd.randrange(4)
            if op == 0:
                other[i], other[i + 1] = other[i + 1], other[i]
            elif op == 1:
                other[i] = rnd.choice("0123456789")
            elif op == 2:
                del other[i]
            else:
                other.insert(i, rnd.choice("0123456789"))
        left.append(nik)
        right.append("".join(other))
    sql = "damerau_levenshtein(n_l, n_r) <= 1"
    engine = _evaluate(parse_condition(sql), "n", left, right)
    assert (engine == _duckdb_truth(sql, left, right)).all()
    assert 300 < engine.sum() < 2_700
