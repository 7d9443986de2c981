"""The token-subset name level: parsed from the spec's Splink SQL and evaluated exactly like DuckDB."""

from __future__ import annotations

import random

import pytest
from test_engine_levels import _duckdb_truth, _evaluate

from linkage.comparisons import TokenSubsetLevel
from linkage.engine.conditions import AnyOf, TokensWithin, parse_condition
from linkage.engine.errors import UnsupportedModelError

_TOKENS = ["SITI", "AMINAH", "NUR", "SRI", "DEWI", "NASUTION", "SALSABILA", "SUMIATI", "A", "M", "RIZKI", "AGUS"]


def _token_pairs(n: int, seed: int) -> tuple[list[str | None], list[str | None]]:
    """Names of 1-4 tokens; half of the right sides are the left with a token dropped, added, repeated
    or moved; a few doubled spaces (DuckDB's str_split then yields an empty token) and nulls."""
    rnd = random.Random(seed)
    left: list[str | None] = []
    right: list[str | None] = []
    for _ in range(n):
        a = [rnd.choice(_TOKENS) for _ in range(rnd.randint(1, 4))]
        b = list(a)
        op = rnd.randrange(6)
        if op == 0 and len(b) > 1:
            del b[rnd.randrange(len(b))]
        elif op == 1:
            b.insert(rnd.randrange(len(b) + 1), rnd.choice(_TOKENS))
        elif op == 2:
            rnd.shuffle(b)
        elif op == 3:
            b.append(b[0])
        elif op == 4:
            b = [rnd.choice(_TOKENS) for _ in range(rnd.randint(1, 4))]
        sa, sb = " ".join(a), " ".join(b)
        if rnd.random() < 0.03:
            sb = sb.replace(" ", "  ", 1)
        left.append(None if rnd.random() < 0.05 else sa)
        right.append(None if rnd.random() < 0.05 else sb)
    return left, right


def test_spec_sql_parses_into_two_directions() -> None:
    sql = TokenSubsetLevel("n").sql()
    assert parse_condition(sql) == AnyOf((TokensWithin("n", "l"), TokensWithin("n", "r")))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_token_subset_matches_duckdb(seed: int) -> None:
    left, right = _token_pairs(5_000, seed)
    sql = TokenSubsetLevel("n").sql()
    engine = _evaluate(parse_condition(sql), "n", left, right)
    truth = _duckdb_truth(sql, left, right)
    assert (engine == truth).all()
    assert 1_000 < truth.sum() < 4_500  # both outcomes are well represented


def test_one_direction_matches_duckdb() -> None:
    left, right = _token_pairs(5_000, 9)
    sql = "list_has_all(str_split(n_r, ' '), str_split(n_l, ' '))"
    assert parse_condition(sql) == TokensWithin("n", "r")
    assert (_evaluate(parse_condition(sql), "n", left, right) == _duckdb_truth(sql, left, right)).all()


@pytest.mark.parametrize(
    "sql",
    [
        "list_has_all(str_split(a_l, ','), str_split(a_r, ','))",
        "list_has_all(str_split(a_l, ' '), str_split(b_r, ' '))",
        "list_has_all(str_split(a_l, ' '), str_split(a_l, ' '))",
        "list_has_all(a_l, a_r)",
    ],
)
def test_other_list_conditions_are_refused(sql: str) -> None:
    with pytest.raises(UnsupportedModelError):
        parse_condition(sql)
