"""The closed set of comparison-level conditions the engine can evaluate, read from Splink SQL.

A trained Splink model JSON stores each level as a SQL condition. The comparisons we train are built
from a small closed set of level kinds, so the engine parses each condition back into one of the
dataclasses below (with sqlglot, which Splink itself depends on) and evaluates it with vectorised
code instead of SQL. Anything outside the set is refused at load time with a clear error, so a model
that the engine cannot score exactly is never silently mis-scored.

Column names are the Splink input columns without the `_l` / `_r` suffix; `left` refers to the
query record side and `right` to the master side (the engine scores query `_l` against master `_r`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import expressions as exp

from linkage.engine.errors import UnsupportedModelError


@dataclass(frozen=True, slots=True)
class IsNull:
    """`a_l IS NULL OR a_r IS NULL [OR b_l IS NULL ...]`: one (column, side) per term."""

    terms: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Equal:
    """`left_l = right_r` (same column for a plain exact match, two columns for a cross match)."""

    left: str
    right: str


@dataclass(frozen=True, slots=True)
class JaroWinklerAtLeast:
    """`jaro_winkler_similarity(c_l, c_r [, cutoff]) >= threshold` with DuckDB's semantics."""

    column: str
    threshold: float
    cutoff: float | None = None


@dataclass(frozen=True, slots=True)
class DamerauLevenshteinAtMost:
    """`damerau_levenshtein(c_l, c_r) <= max_distance`."""

    column: str
    max_distance: int


@dataclass(frozen=True, slots=True)
class AbsDiffAtMost:
    """`ABS(c_l - c_r) <= max_diff` on a numeric column."""

    column: str
    max_diff: float


@dataclass(frozen=True, slots=True)
class TokensWithin:
    """`list_has_all(str_split(c_<outer>, ' '), str_split(c_<inner>, ' '))`: every space-separated token
    of the `inner` side is among the `outer` side's tokens (`outer` is "l" or "r")."""

    column: str
    outer: str


@dataclass(frozen=True, slots=True)
class AllOf:
    """Conjunction of conditions (SQL AND; a NULL part makes the level not apply)."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Disjunction of conditions (SQL OR: TRUE when any part is TRUE, NULL parts count as not TRUE)."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Otherwise:
    """Splink's ELSE level."""


Condition = (
    IsNull
    | Equal
    | JaroWinklerAtLeast
    | DamerauLevenshteinAtMost
    | AbsDiffAtMost
    | TokensWithin
    | AllOf
    | AnyOf
    | Otherwise
)


def _side_column(node: Any, sql: str) -> tuple[str, str]:
    """Split a `"name_l"` column into ("name", "l")."""
    if not isinstance(node, exp.Column) or node.table:
        raise UnsupportedModelError(f'expected a column like "x_l" in level condition: {sql}')
    name = node.name
    if len(name) < 3 or name[-2:] not in ("_l", "_r"):
        raise UnsupportedModelError(f"column {name!r} has no _l/_r suffix in level condition: {sql}")
    return name[:-2], name[-1]


def _number(node: Any, sql: str) -> float:
    if isinstance(node, exp.Neg):
        return -_number(node.this, sql)
    if not isinstance(node, exp.Literal) or node.is_string:
        raise UnsupportedModelError(f"expected a numeric literal in level condition: {sql}")
    return float(node.this)


def _pair(a: Any, b: Any, sql: str) -> tuple[str, str]:
    """Return (left column, right column) of an l/r pair, in either written order."""
    col_a, side_a = _side_column(a, sql)
    col_b, side_b = _side_column(b, sql)
    if {side_a, side_b} != {"l", "r"}:
        raise UnsupportedModelError(f"a comparison must pair an _l with an _r column: {sql}")
    return (col_a, col_b) if side_a == "l" else (col_b, col_a)


def _same_column(a: Any, b: Any, sql: str) -> str:
    left, right = _pair(a, b, sql)
    if left != right:
        raise UnsupportedModelError(f"similarity across two different columns is not supported: {sql}")
    return left


def _flatten_or(node: Any) -> list[Any]:
    node = node.unnest()
    if isinstance(node, exp.Or):
        return _flatten_or(node.this) + _flatten_or(node.expression)
    return [node]


def _flatten_and(node: Any) -> list[Any]:
    node = node.unnest()
    if isinstance(node, exp.And):
        return _flatten_and(node.this) + _flatten_and(node.expression)
    return [node]


def _convert(node: Any, sql: str) -> Condition:
    node = node.unnest()
    if isinstance(node, exp.And):
        return AllOf(tuple(_convert(part, sql) for part in _flatten_and(node)))
    if isinstance(node, exp.Or):
        parts = _flatten_or(node)
        if all(isinstance(p, exp.Is) and isinstance(p.expression, exp.Null) for p in parts):
            return IsNull(tuple(_side_column(p.this, sql) for p in parts))
        return AnyOf(tuple(_convert(part, sql) for part in parts))
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return IsNull((_side_column(node.this, sql),))
    if isinstance(node, exp.EQ):
        left, right = _pair(node.this, node.expression, sql)
        return Equal(left, right)
    if isinstance(node, exp.GTE) and isinstance(node.this, exp.JarowinklerSimilarity):
        call = node.this
        column = _same_column(call.this, call.expression, sql)
        cutoff_node = call.args.get("case_insensitive")  # sqlglot's slot for the 3rd argument
        cutoff = _number(cutoff_node, sql) if cutoff_node is not None else None
        return JaroWinklerAtLeast(column, _number(node.expression, sql), cutoff)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "list_has_all":
        return _tokens_within(node, sql)
    if isinstance(node, exp.LTE):
        lhs = node.this
        if isinstance(lhs, exp.Anonymous) and lhs.name.lower() == "damerau_levenshtein":
            args = lhs.expressions
            if len(args) != 2:
                raise UnsupportedModelError(f"damerau_levenshtein takes two columns: {sql}")
            column = _same_column(args[0], args[1], sql)
            return DamerauLevenshteinAtMost(column, int(_number(node.expression, sql)))
        if isinstance(lhs, exp.Abs) and isinstance(lhs.this.unnest(), exp.Sub):
            sub = lhs.this.unnest()
            return AbsDiffAtMost(_same_column(sub.this, sub.expression, sql), _number(node.expression, sql))
    raise UnsupportedModelError(f"level condition outside the engine's supported kinds: {sql}")


def _tokens_within(node: Any, sql: str) -> TokensWithin:
    """`list_has_all(str_split(a, ' '), str_split(b, ' '))` with a and b the two sides of one column."""
    args = node.expressions
    if len(args) != 2 or not all(isinstance(a, exp.Split) for a in args):
        raise UnsupportedModelError(f"list_has_all takes two str_split(column, ' ') lists: {sql}")
    for arg in args:
        sep = arg.expression
        if not isinstance(sep, exp.Literal) or not sep.is_string or sep.this != " ":
            raise UnsupportedModelError(f"only str_split on a single space is supported: {sql}")
    outer, outer_side = _side_column(args[0].this, sql)
    inner, inner_side = _side_column(args[1].this, sql)
    if outer != inner or outer_side == inner_side:
        raise UnsupportedModelError(f"list_has_all must compare the two sides of one column: {sql}")
    return TokensWithin(outer, outer_side)


def parse_condition(sql: str) -> Condition:
    """Parse one Splink comparison-level `sql_condition` into a `Condition`."""
    if sql.strip().upper() == "ELSE":
        return Otherwise()
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise UnsupportedModelError(f"cannot parse level condition {sql!r}") from e
    return _convert(tree, sql)


def parse_blocking_rule(sql: str) -> tuple[tuple[str, str], ...]:
    """Parse an equality blocking rule `l."a" = r."a" AND ...` into (left column, right column) pairs."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise UnsupportedModelError(f"cannot parse blocking rule {sql!r}") from e
    pairs: list[tuple[str, str]] = []
    for part in _flatten_and(tree):
        if not isinstance(part, exp.EQ):
            raise UnsupportedModelError(f"only equality blocking rules are supported: {sql}")
        sides: dict[str, str] = {}
        for node in (part.this, part.expression):
            if not isinstance(node, exp.Column) or node.table not in ("l", "r"):
                raise UnsupportedModelError(f'blocking rule terms must be l."x" = r."y": {sql}')
            sides[node.table] = node.name
        if set(sides) != {"l", "r"}:
            raise UnsupportedModelError(f"blocking rule must compare l with r: {sql}")
        pairs.append((sides["l"], sides["r"]))
    return tuple(pairs)
