"""The prepared in-memory master: encoded columns, blocking indexes, term frequencies, updates.

Built once from the (already prepared) master table; afterwards `upsert` and `remove` change single
rows without rebuilding: an upsert appends a new row (the old version, if any, is masked out) and
indexes it in each rule's small dictionary; term-frequency counts follow both operations.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from linkage.engine.blocking import RowIds, RuleIndex
from linkage.engine.columns import EncodedColumn
from linkage.engine.conditions import AllOf, AnyOf, Condition, DamerauLevenshteinAtMost, JaroWinklerAtLeast
from linkage.engine.errors import EngineError
from linkage.engine.family import MasterFamilies
from linkage.engine.params import ModelParameters


def similarity_columns(params: ModelParameters) -> set[str]:
    """Columns compared by string similarity (their master strings are read per pair)."""

    def walk(condition: Condition) -> set[str]:
        if isinstance(condition, (JaroWinklerAtLeast, DamerauLevenshteinAtMost)):
            return {condition.column}
        if isinstance(condition, (AllOf, AnyOf)):
            return set().union(*(walk(part) for part in condition.parts))
        return set()

    return set().union(*(walk(level.condition) for c in params.comparisons for level in c.levels))


class PreparedMaster:
    """Master records ready for scoring: one `EncodedColumn` per model column plus key indexes."""

    def __init__(
        self,
        params: ModelParameters,
        table: pa.Table,
        id_column: str,
        ranks: npt.NDArray[np.int64] | None = None,
    ) -> None:
        missing = [c for c in (id_column, *params.columns) if c not in table.column_names]
        if missing:
            raise EngineError(f"the prepared master lacks columns the model needs: {', '.join(missing)}")
        self.params = params
        self.id_column = id_column
        self.columns: dict[str, EncodedColumn] = {
            name: EncodedColumn(name, table.column(name)) for name in params.columns
        }
        self._ids: list[str] = [str(v) for v in table.column(id_column).to_pylist()]
        self._row_of: dict[str, int] = {rid: row for row, rid in enumerate(self._ids)}
        if len(self._row_of) != len(self._ids):
            raise EngineError(f"master column {id_column!r} has duplicate ids")
        self._alive: npt.NDArray[np.bool_] = np.ones(len(self._ids), dtype=np.bool_)
        self._removed = 0
        for name in similarity_columns(params):
            self.columns[name].share_strings()
        self.rules: list[RuleIndex] = [
            RuleIndex([self.columns[right].codes for _, right in rule]) for rule in params.blocking_rules
        ]
        # KK heads for the family tie-break (none when the master has no `relationship` column)
        self.families = MasterFamilies(table)
        # A shard's rows are a subset of the master in another order: each row's position in the whole
        # master (`rank`) orders exact ties as the whole master's row order does. None: rank = row.
        self._ranks: npt.NDArray[np.int64] | None = None
        if ranks is not None:
            if len(ranks) != len(self._ids):
                raise EngineError(f"{len(ranks)} ranks for {len(self._ids)} master rows")
            self._ranks = np.asarray(ranks, dtype=np.int64).copy()

    @property
    def ranks(self) -> npt.NDArray[np.int64] | None:
        """Each row's position in the whole master (None: the rows are the whole master, rank = row)."""
        return None if self._ranks is None else self._ranks[: len(self._ids)]

    def has(self, record_id: str) -> bool:
        """Whether a live row has this id."""
        return str(record_id) in self._row_of

    def _grow_alive(self, size: int) -> None:
        if size > len(self._alive):  # grow by doubling: appends stay O(1) amortised
            grown = np.zeros(max(16, 2 * len(self._alive), size), dtype=np.bool_)
            grown[: len(self._alive)] = self._alive
            self._alive = grown

    def _grow_ranks(self, size: int) -> None:
        assert self._ranks is not None
        if size > len(self._ranks):
            grown = np.zeros(max(16, 2 * len(self._ranks), size), dtype=np.int64)
            grown[: len(self._ranks)] = self._ranks
            self._ranks = grown

    def extend(self, table: pa.Table, ranks: npt.NDArray[np.int64] | None = None) -> None:
        """Append many prepared master rows at once (ids must not be live already): the columns, the
        blocking indexes (one merge per rule) and the family heads grow in bulk."""
        n = table.num_rows
        if not n:
            return
        if (ranks is None) != (self._ranks is None):
            raise EngineError("ranks are given for every append of a ranked master, and only then")
        ids = [str(v) for v in table.column(self.id_column).to_pylist()]
        clash = [rid for rid in ids if rid in self._row_of]
        if clash or len(set(ids)) != n:
            raise EngineError(f"{len(clash) or n - len(set(ids))} appended master ids are live already or repeat")
        start = len(self._ids)
        for name, column in self.columns.items():
            column.extend(table.column(name))
        self._ids.extend(ids)
        self._row_of.update((rid, start + i) for i, rid in enumerate(ids))
        self._grow_alive(start + n)
        self._alive[start : start + n] = True
        if ranks is not None:
            self._grow_ranks(start + n)
            assert self._ranks is not None
            self._ranks[start : start + n] = ranks
        rows = np.arange(start, start + n, dtype=np.int64)
        for rule, index in zip(self.params.blocking_rules, self.rules, strict=True):
            index.extend(rows, [self.columns[right].codes[start:] for _, right in rule])
        if len(self.families) == start and n:
            appended = MasterFamilies(table)
            if len(appended) == n:
                self.families.extend(*appended.described())
            else:
                self.families.extend([None] * n, [False] * n)

    def __len__(self) -> int:
        """Number of live master records."""
        return len(self._ids) - self._removed

    @property
    def row_count(self) -> int:
        """Rows ever stored (row ids run from 0 to this, removed rows included)."""
        return len(self._ids)

    def record_id(self, row: int) -> str:
        """Master record id of a row."""
        return self._ids[row]

    def alive(self, rows: RowIds) -> npt.NDArray[np.bool_]:
        """Which of these rows are live (not removed or replaced)."""
        if not self._removed:  # the common case: skip a random gather over the whole master
            return np.ones(len(rows), dtype=np.bool_)
        live: npt.NDArray[np.bool_] = self._alive[rows]
        return live

    def upsert(self, record: Mapping[str, object], rank: int | None = None) -> None:
        """Insert a prepared master record, or replace the live one with the same id (`rank`: its
        position in the whole master, for a ranked master)."""
        if (rank is None) != (self._ranks is None):
            raise EngineError("a ranked master's upsert names the row's rank, and only then")
        rid = str(record[self.id_column])
        if rid in self._row_of:
            self.remove(rid)
        row = len(self._ids)
        for name, column in self.columns.items():
            column.append(record.get(name))
        self._ids.append(rid)
        self._row_of[rid] = row
        self._grow_alive(row + 1)
        self._alive[row] = True
        if rank is not None:
            self._grow_ranks(row + 1)
            assert self._ranks is not None
            self._ranks[row] = rank
        if len(self.families) == row:  # an update does not say who heads the KK: no head evidence
            self.families.extend([None], [False])
        for rule, index in zip(self.params.blocking_rules, self.rules, strict=True):
            index.add(row, [int(self.columns[right].codes[row]) for _, right in rule])

    def remove(self, record_id: str) -> bool:
        """Remove a live master record; returns False when the id is unknown."""
        row = self._row_of.pop(str(record_id), None)
        if row is None:
            return False
        self._alive[row] = False
        self._removed += 1
        for column in self.columns.values():
            column.forget(row)
        return True
