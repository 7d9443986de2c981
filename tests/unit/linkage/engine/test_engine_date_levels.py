"""The birth date's one-digit level (Damerau-Levenshtein <= 1 on ISO dates) and the address's place
levels, as the spec renders them: the engine evaluates them exactly like DuckDB."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from test_engine_levels import _duckdb_truth, _evaluate

from linkage.comparisons import ADDRESS, BIRTH_DATE, DamerauLevenshteinLevel, ExactLevel, JaroWinklerLevel
from linkage.engine.conditions import parse_condition


def _date_pairs(n: int, seed: int) -> tuple[list[str | None], list[str | None]]:
    """ISO dates; the right side equal, one digit changed, two adjacent digits swapped, two digits
    changed, a day later or unrelated; a few nulls."""
    rnd = random.Random(seed)
    left: list[str | None] = []
    right: list[str | None] = []
    for _ in range(n):
        d = date(1930, 1, 1) + timedelta(days=rnd.randrange(30_000))
        a = d.isoformat()
        b = list(a)
        digits = [i for i, ch in enumerate(a) if ch.isdigit()]
        op = rnd.randrange(6)
        if op == 1:
            b[rnd.choice(digits)] = rnd.choice("0123456789")
        elif op == 2:
            i = rnd.choice([i for i in digits if i + 1 in digits])
            b[i], b[i + 1] = b[i + 1], b[i]
        elif op == 3:
            for i in rnd.sample(digits, 2):
                b[i] = rnd.choice("0123456789")
        elif op == 4:
            b = list((d + timedelta(days=1)).isoformat())
        elif op == 5:
            b = list((date(1930, 1, 1) + timedelta(days=rnd.randrange(30_000))).isoformat())
        left.append(None if rnd.random() < 0.03 else a)
        right.append(None if rnd.random() < 0.03 else "".join(b))
    return left, right


def _spec_level(levels: tuple[object, ...], kind: type, column: str) -> object:
    return next(lv for lv in levels if isinstance(lv, kind) and getattr(lv, "column", None) == column)


@pytest.mark.parametrize("seed", [1, 2])
def test_one_digit_birth_date_level_matches_duckdb(seed: int) -> None:
    level = _spec_level(BIRTH_DATE.levels, DamerauLevenshteinLevel, "birth_date")
    sql = level.sql().replace("birth_date_", "n_")  # type: ignore[attr-defined]
    left, right = _date_pairs(4_000, seed)
    truth = _duckdb_truth(sql, left, right)
    assert (_evaluate(parse_condition(sql), "n", left, right) == truth).all()
    assert 1_000 < truth.sum() < 3_000  # both outcomes well represented


@pytest.mark.parametrize(("kind", "threshold"), [(ExactLevel, None), (JaroWinklerLevel, 0.9), (JaroWinklerLevel, 0.8)])
def test_address_place_levels_match_duckdb(kind: type, threshold: float | None) -> None:
    levels = [lv for lv in ADDRESS.levels if isinstance(lv, kind) and getattr(lv, "column", None) == "addr_place"]
    level = next(lv for lv in levels if threshold is None or lv.threshold == threshold)
    sql = level.sql().replace("addr_place_", "n_")
    rnd = random.Random(5)
    places = ["SUKAMAJU", "SUKA MAJU", "SUKAMAKMUR", "MELATI", "MELATI INDAH", "42 MILLER STREET KINGSTON 2604"]
    left = [rnd.choice(places) for _ in range(2_000)] + [None]
    right = [rnd.choice(places) for _ in range(2_000)] + ["MELATI"]
    truth = _duckdb_truth(sql, left, right)
    assert (_evaluate(parse_condition(sql), "n", left, right) == truth).all()
    assert 0 < truth.sum() < len(left)
