"""Vectorised Fellegi-Sunter scoring of candidate pairs with Splink's exact level semantics.

Each comparison's levels are tried in order on the pairs no earlier level claimed (SQL `CASE WHEN`):
a condition that touches a NULL is not true, so the pair falls through, exactly as in Splink's SQL.
Null, exact and cross-exact levels compare integer codes; Jaro-Winkler and Damerau-Levenshtein use
rapidfuzz (float64 scores, DuckDB's cutoff rule), only for pairs still undecided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler
from rapidfuzz.process import cpdist

from linkage.engine.blocking import RowIds
from linkage.engine.columns import NULL_CODE, Codes, as_number, char_matrix, token_masks
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
    TokensWithin,
)
from linkage.engine.master import PreparedMaster
from linkage.engine.params import LevelParameters

Mask = npt.NDArray[np.bool_]
_DL_DISTANCE: Any = DamerauLevenshtein.distance
Floats = npt.NDArray[np.float64]


_DUCKDB: dict[int, Any] = {}


def duckdb_jaro_winkler(left: list[Any], right: list[Any], cutoff: float) -> Floats:
    """DuckDB's own `jaro_winkler_similarity(l, r, cutoff)` for a few boundary pairs (one connection
    per process: a connection must not cross a fork)."""
    import os

    import duckdb

    con = _DUCKDB.setdefault(os.getpid(), duckdb.connect())
    pairs = pa.table({"l": left, "r": right, "i": list(range(len(left)))})
    rows = con.sql(f"select jaro_winkler_similarity(l, r, {cutoff!r}) from pairs order by i").fetchall()
    del pairs
    return np.array([r[0] for r in rows], dtype=np.float64)


class QueryBatch:
    """Prepared query records with lazily computed encodings against the master vocabularies."""

    def __init__(self, table: pa.Table, master: PreparedMaster) -> None:
        self.size = table.num_rows
        self._master = master
        self._table = table
        # converted to Python lists on first use: a single-record call touches only a few columns
        self._values: dict[str, list[object]] = {}
        self._codes: dict[tuple[str, str], Codes] = {}
        self._objects: dict[str, npt.NDArray[np.object_]] = {}
        self._numbers: dict[str, Floats] = {}
        self._token_masks: dict[str, npt.NDArray[np.uint64]] = {}

    @property
    def prepared(self) -> pa.Table:
        """The prepared query records."""
        return self._table

    def values(self, column: str) -> list[object]:
        """Raw prepared values of a query column (all None when the batch lacks the column)."""
        found = self._values.get(column)
        if found is None:
            found = self._table.column(column).to_pylist() if column in self._table.column_names else [None] * self.size
            self._values[column] = found
        return found

    def objects(self, column: str) -> npt.NDArray[np.object_]:
        """Query values of a column as an object array (for gathering per pair)."""
        found = self._objects.get(column)
        if found is None:
            values = self.values(column)
            found = np.empty(len(values), dtype=object)
            found[:] = values
            self._objects[column] = found
        return found

    def numbers(self, column: str) -> Floats:
        """Query values of a column as float64 (NaN for null), for absolute-difference levels."""
        found = self._numbers.get(column)
        if found is None:
            found = np.array([as_number(v) for v in self.values(column)], dtype=np.float64)
            self._numbers[column] = found
        return found

    def token_masks(self, column: str) -> npt.NDArray[np.uint64]:
        """Token signatures of a query column (`linkage.engine.columns.token_mask`; 0 for null)."""
        found = self._token_masks.get(column)
        if found is None:
            found = token_masks(self.values(column))
            self._token_masks[column] = found
        return found

    def codes(self, column: str, vocabulary: str | None = None) -> Codes:
        """Query values of `column` encoded in the vocabulary of master column `vocabulary`."""
        key = (column, vocabulary or column)
        if key not in self._codes:
            self._codes[key] = self._master.columns[key[1]].encode(self.values(column))
        return self._codes[key]


@dataclass(frozen=True, slots=True)
class PairScores:
    """Per-pair results: chosen level and weight (level + TF adjustment) for each comparison."""

    levels: npt.NDArray[np.int16]  # shape (comparisons, pairs)
    weights: Floats  # shape (comparisons, pairs)
    tf_adjustments: Floats  # shape (comparisons, pairs)
    totals: Floats  # shape (pairs,): prior + sum of weights


class PairScorer:
    """Scores candidate pairs of one query batch against the master."""

    def __init__(self, master: PreparedMaster, batch: QueryBatch, q_idx: RowIds, rows: RowIds) -> None:
        self._master = master
        self._batch = batch
        self._q = q_idx
        self._rows = rows
        self._jw_cache: dict[str, Floats] = {}
        self._gathered: dict[str, Codes] = {}
        self._dl_cache: dict[tuple[str, int], npt.NDArray[np.int64]] = {}

    def _master_codes(self, column: str, idx: RowIds) -> Codes:
        # one random-access gather from the big master array per column and batch, then cheap subsets
        gathered = self._gathered.get(column)
        if gathered is None:
            gathered = self._master.columns[column].codes[self._rows]
            self._gathered[column] = gathered
        return gathered[idx]

    def _query_codes(self, column: str, idx: RowIds, vocabulary: str | None = None) -> Codes:
        return self._batch.codes(column, vocabulary)[self._q[idx]]

    def _string_pairs(self, column: str, idx: RowIds) -> tuple[RowIds, list[Any], list[Any]]:
        """Pairs (subset of idx) where both strings are non-null, with the two string lists."""
        m_codes = self._master_codes(column, idx)
        q_null = self._query_codes(column, idx) == NULL_CODE
        keep = (m_codes != NULL_CODE) & ~q_null
        idx = idx[keep]
        q_strings = self._batch.objects(column)[self._q[idx]].tolist()
        m_strings = self._master.columns[column].strings_of(m_codes[keep])
        return idx, q_strings, m_strings

    def _jaro_winkler(self, column: str, idx: RowIds) -> Floats:
        """Similarity for pairs idx (NaN where a side is null), cached per batch and column."""
        cache = self._jw_cache.setdefault(column, np.full(len(self._q), -1.0))
        todo = idx[cache[idx] == -1.0]
        if len(todo):
            cache[todo] = np.nan
            sub, q_strings, m_strings = self._string_pairs(column, todo)
            if len(sub):
                cache[sub] = cpdist(q_strings, m_strings, scorer=JaroWinkler.similarity, dtype=np.float64)
        return cache[idx]

    def _damerau_levenshtein(self, column: str, idx: RowIds, cutoff: int) -> npt.NDArray[np.int64]:
        """Distance for pairs idx (-1 where a side is null; cutoff + 1 for anything farther: the
        early exit makes it cheap, and `<= d` stays exact for any d <= cutoff)."""
        key = (column, cutoff)
        cache = self._dl_cache.setdefault(key, np.full(len(self._q), -2, dtype=np.int64))
        todo = idx[cache[idx] == -2]
        if len(todo):
            cache[todo] = -1
            if cutoff == 1:
                todo = self._drop_far_apart(column, todo, cache)
            sub, q_strings, m_strings = self._string_pairs(column, todo)
            if len(sub):
                cache[sub] = cpdist(q_strings, m_strings, scorer=_DL_DISTANCE, dtype=np.int64, score_cutoff=cutoff)
        return cache[idx]

    def _drop_far_apart(self, column: str, todo: RowIds, cache: npt.NDArray[np.int64]) -> RowIds:
        """Settle pairs that cannot be within distance 1 without running the edit distance: for two
        strings of equal length, one substitution or one adjacent transposition changes at most two
        positions, so more than two differing positions means a distance of at least 2."""
        master = self._master.columns[column].char_matrix()
        if master is None:
            return todo
        m_chars, m_lengths = master
        q_chars, q_lengths = char_matrix(self._batch.values(column), m_chars.shape[1])
        m_codes = self._master_codes(column, todo)
        q_rows = self._q[todo]
        seen = m_codes >= 0
        both = seen & (q_lengths[q_rows] >= 0)
        both[both] &= q_lengths[q_rows[both]] == m_lengths[m_codes[both]]
        pos = np.flatnonzero(both)
        differing = (q_chars[q_rows[pos]] != m_chars[m_codes[pos]]).sum(axis=1)
        far = pos[differing > 2]
        cache[todo[far]] = 2  # cutoff + 1: "farther than 1"
        keep = np.ones(len(todo), dtype=np.bool_)
        keep[far] = False
        return todo[keep]

    def holds(self, condition: Condition, idx: RowIds) -> Mask:
        """Whether the condition is TRUE (not false, not NULL) for pairs idx."""
        if isinstance(condition, Otherwise):
            return np.ones(len(idx), dtype=np.bool_)
        if isinstance(condition, IsNull):
            out = np.zeros(len(idx), dtype=np.bool_)
            for column, side in condition.terms:
                codes = self._query_codes(column, idx) if side == "l" else self._master_codes(column, idx)
                out |= codes == NULL_CODE
            return out
        if isinstance(condition, Equal):
            q_codes = self._query_codes(condition.left, idx, condition.right)
            equal: Mask = (q_codes >= 0) & (q_codes == self._master_codes(condition.right, idx))
            return equal
        if isinstance(condition, AllOf):
            out = np.ones(len(idx), dtype=np.bool_)
            for part in condition.parts:
                live = np.flatnonzero(out)
                out[live] = self.holds(part, idx[live])
            return out
        if isinstance(condition, AnyOf):
            out = np.zeros(len(idx), dtype=np.bool_)
            for part in condition.parts:
                open_ = np.flatnonzero(~out)
                out[open_] = self.holds(part, idx[open_])
            return out
        if isinstance(condition, JaroWinklerAtLeast):
            sim = self._jaro_winkler(condition.column, idx)
            if condition.cutoff is not None:
                sim = self._apply_cutoff(condition.column, idx, sim, condition.cutoff)
            with np.errstate(invalid="ignore"):
                above: Mask = sim >= condition.threshold
            return above
        if isinstance(condition, DamerauLevenshteinAtMost):
            dist = self._damerau_levenshtein(condition.column, idx, condition.max_distance)
            return (dist >= 0) & (dist <= condition.max_distance)
        if isinstance(condition, TokensWithin):
            return self._tokens_within(condition, idx)
        return self._abs_diff(condition, idx)

    def _tokens_within(self, condition: TokensWithin, idx: RowIds) -> Mask:
        """DuckDB's `list_has_all(str_split(outer, ' '), str_split(inner, ' '))`: a signature filter
        first (vectorised), then the token sets of the few pairs that pass it."""
        column = condition.column
        out = np.zeros(len(idx), dtype=np.bool_)
        m_codes = self._master_codes(column, idx)
        q_codes = self._query_codes(column, idx)
        both = np.flatnonzero((m_codes != NULL_CODE) & (q_codes != NULL_CODE))
        if not len(both):
            return out
        q_masks = self._batch.token_masks(column)[self._q[idx[both]]]
        m_masks = np.zeros(len(both), dtype=np.uint64)
        seen = m_codes[both] >= 0
        m_masks[seen] = self._master.columns[column].token_masks()[m_codes[both][seen]]
        outer, inner = (q_masks, m_masks) if condition.outer == "l" else (m_masks, q_masks)
        maybe = both[(inner & ~outer) == 0]
        if not len(maybe):
            return out
        sub, q_strings, m_strings = self._string_pairs(column, idx[maybe])
        # _string_pairs keeps every pair here (both sides non-null), in order
        for k, (q_text, m_text) in enumerate(zip(q_strings, m_strings, strict=True)):
            o, i = (q_text, m_text) if condition.outer == "l" else (m_text, q_text)
            out[maybe[k]] = set(i.split(" ")) <= set(o.split(" "))
        del sub
        return out

    def _apply_cutoff(self, column: str, idx: RowIds, sim: Floats, cutoff: float) -> Floats:
        """DuckDB's 3-argument form: 0.0 below the cutoff; AT the cutoff DuckDB's result depends on
        rounding inside its cutoff arithmetic (sometimes 0.0, sometimes the similarity), so the rare
        pairs within 1e-9 of the cutoff are asked of DuckDB itself."""
        out = np.where(np.isnan(sim) | (sim >= cutoff), sim, 0.0)
        near = np.flatnonzero(np.abs(sim - cutoff) <= 1e-9)
        if len(near):
            sub, q_strings, m_strings = self._string_pairs(column, idx[near])
            exact = duckdb_jaro_winkler(q_strings, m_strings, cutoff)
            out[near] = exact if len(sub) == len(near) else out[near]
        return out

    def _abs_diff(self, condition: AbsDiffAtMost, idx: RowIds) -> Mask:
        column = self._master.columns[condition.column]
        numbers = column.numbers()
        m_codes = self._master_codes(condition.column, idx)
        q_numbers = self._batch.numbers(condition.column)[self._q[idx]]
        m_numbers = np.full(len(idx), np.nan)
        seen = m_codes >= 0
        m_numbers[seen] = numbers[m_codes[seen]]
        with np.errstate(invalid="ignore"):
            return np.asarray(np.abs(q_numbers - m_numbers) <= condition.max_diff)

    def score(self) -> PairScores:
        """Levels, weights and totals for all pairs."""
        params = self._master.params
        n = len(self._q)
        n_comp = len(params.comparisons)
        levels = np.full((n_comp, n), -1, dtype=np.int16)
        weights = np.zeros((n_comp, n), dtype=np.float64)
        tf_adj = np.zeros((n_comp, n), dtype=np.float64)
        totals = np.full(n, params.prior_match_weight, dtype=np.float64)
        for c, comparison in enumerate(params.comparisons):
            undecided = np.arange(n, dtype=np.int64)
            for lvl, level in enumerate(comparison.levels):
                if not len(undecided):
                    break
                hit = self.holds(level.condition, undecided)
                chosen = undecided[hit]
                undecided = undecided[~hit]
                levels[c, chosen] = lvl
                weights[c, chosen] = level.match_weight
                if level.tf_column is not None and len(chosen):
                    tf_adj[c, chosen] = self._tf_adjustment(level.tf_column, level, chosen)
            # Splink sums prior, then each comparison's weight and TF adjustment, in this order.
            totals += weights[c]
            totals += tf_adj[c]
            weights[c] += tf_adj[c]
        return PairScores(levels, weights, tf_adj, totals)

    def _tf_adjustment(self, column_name: str, level: LevelParameters, idx: RowIds) -> Floats:
        column = self._master.columns[column_name]
        tf_l = column.term_frequency(self._query_codes(column_name, idx))
        tf_r = column.term_frequency(self._master_codes(column_name, idx))
        tf = np.fmax(tf_l, tf_r)
        present = ~np.isnan(tf)
        out = np.zeros(len(idx), dtype=np.float64)
        tf_u = np.maximum(tf[present], level.tf_minimum_u)
        out[present] = level.tf_weight * (level.log2_u_exact - np.log2(tf_u))
        return out
