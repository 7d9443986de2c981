"""Blocking keys as stable 64-bit hashes: which master records a query could be paired with.

The engine pairs a query record with a master record when, for some blocking rule, every
(left, right) column pair agrees: the query's `left` value equals the master's `right` value and
neither is NULL. Each rule that applies to a record gives one hash here: of the rule's text and the
record's values in the rule's column order (the query side reads the `left` columns, the master side
the `right` ones). So a query and a master record share a hash exactly when some rule pairs them,
up to 64-bit collisions (which only ever add a pair, never lose one). A rule with a NULL value, or a
column the record lacks, gives no hash.

Unlike the index's hashes (`blocking.key_hashes`, over codes of the loaded master's vocabulary),
these depend on the values alone: the same in every process, before and after master updates, so a
service can store a query's hashes and compare them later with a new master record's. FNV-1a over
UTF-8 bytes, vectorised over the batch; values carry a type tag (string, number, date, other) so that
"1980" and 1980 differ as they do for the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

#: The hashes of one record in rule order, as signed 64-bit integers (SQL BIGINT).
KeyHashes = tuple[int, ...]
BlockingRule = tuple[tuple[str, str], ...]

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def rule_text(rule: BlockingRule) -> str:
    """A rule as text (`l.a=r.b&...`): the rule's part of each hash, independent of its position."""
    return "&".join(f"l.{left}=r.{right}" for left, right in rule)


def fnv1a_64(strings: pa.Array, seed: int | None = None) -> npt.NDArray[np.uint64]:
    """FNV-1a (64-bit) of each string's UTF-8 bytes (a null string hashes as empty). `seed`: the state
    after a common prefix (`fnv1a_state`), so the prefix is hashed once, not per row."""
    arr = pc.fill_null(strings.cast(pa.large_binary()), b"")
    n = len(arr)
    h = np.full(n, _FNV_OFFSET if seed is None else np.uint64(seed), dtype=np.uint64)
    if n == 0:
        return h
    offsets_buf, data_buf = arr.buffers()[1], arr.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, dtype=np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    width = int(lengths.max()) if n else 0
    if width == 0 or len(data) == 0:
        return h
    with np.errstate(over="ignore"):
        for j in range(width):  # one byte column at a time: the loop runs over the longest key only
            live = lengths > j
            byte = data[np.where(live, starts + j, 0)].astype(np.uint64)
            h = np.where(live, (h ^ byte) * _FNV_PRIME, h)
    return h


def fnv1a_state(prefix: str) -> int:
    """The FNV-1a state after `prefix` (its hash), to continue over the rest of a string."""
    return int(fnv1a_64(pa.array([prefix]))[0])


def _tagged(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as text with a type tag; null stays null."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        tag = "s"
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        tag = "n"  # Python equality across int, float and bool: 1980 == 1980.0, True == 1
        if pa.types.is_boolean(kind):
            column = column.cast(pa.int8())
    elif pa.types.is_date(kind):
        tag = "d"
    elif pa.types.is_timestamp(kind):
        tag = "t"
    elif pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    else:
        tag = "o"
    text = column.cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(tag), text, "")


def _rule_hashes(
    table: pa.Table, rule: BlockingRule, side: int, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """One rule's hash per row (as int64) and whether the row has one: FNV-1a of
    `<rule text>\x1f<tagged value>\x1f<tagged value>...`, continued from `seed` (the prefix's state)."""
    names = [pair[side] for pair in rule]
    n = table.num_rows
    if any(name not in table.column_names for name in names):
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.bool_)
    parts = [_tagged(table.column(name)) for name in names]
    # a NULL part makes the whole key NULL (the engine pairs on non-NULL values only)
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x1f", null_handling="emit_null")
    valid = np.asarray(joined.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    return fnv1a_64(joined, seed).view(np.int64), valid


def value_hashes(column: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """FNV-1a of each tagged value (the same in every process) and whether the value is non-null: a
    value's identity for counts kept outside one engine (global term frequencies, record ids)."""
    tagged = _tagged(column)
    valid = np.asarray(tagged.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    return fnv1a_64(tagged), valid


class BlockingKeys:
    """The blocking-key hashes of prepared query and master records under a model's rules."""

    def __init__(self, rules: Sequence[BlockingRule]) -> None:
        self.rules: tuple[BlockingRule, ...] = tuple(tuple(rule) for rule in rules)
        self._seeds = [fnv1a_state(rule_text(rule) + "\x1f") for rule in self.rules]

    def of_queries(self, prepared: pa.Table) -> list[KeyHashes]:
        """One tuple of hashes per prepared query row (its rules' `left` columns)."""
        return self._of(prepared, 0)

    def of_master(self, prepared: pa.Table) -> list[KeyHashes]:
        """One tuple of hashes per prepared master row (its rules' `right` columns)."""
        return self._of(prepared, 1)

    def matrix(self, table: pa.Table, side: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """All rules' hashes as a (rows, rules) matrix and whether each applies (`side` 0: the query's
        `left` columns, 1: the master's `right` ones): the vectorised form of `of_queries`/`of_master`."""
        n = table.num_rows
        hashes = np.zeros((n, len(self.rules)), dtype=np.int64)
        valid = np.zeros((n, len(self.rules)), dtype=np.bool_)
        if n:
            for i, (rule, seed) in enumerate(zip(self.rules, self._seeds, strict=True)):
                hashes[:, i], valid[:, i] = _rule_hashes(table, rule, side, seed)
        return hashes, valid

    def _of(self, table: pa.Table, side: int) -> list[KeyHashes]:
        n = table.num_rows
        if n == 0 or not self.rules:
            return [() for _ in range(n)]
        hashes, valid = self.matrix(table, side)
        rows = hashes.tolist()
        keys: list[KeyHashes] = list(map(tuple, rows))
        partial = np.flatnonzero(~valid.all(axis=1)).tolist()  # rows with a rule that does not apply
        for i, ok in zip(partial, valid[partial].tolist(), strict=True):
            keys[i] = tuple(compress(rows[i], ok))
        return keys
