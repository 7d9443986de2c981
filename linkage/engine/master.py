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

    def __init__(self, params: ModelParameters, table: pa.Table, id_column: str) -> None:
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

    def upsert(self, record: Mapping[str, object]) -> None:
        """Insert a prepared master record, or replace the live one with the same id."""
        rid = str(record[self.id_column])
        if rid in self._row_of:
            self.remove(rid)
        row = len(self._ids)
        for name, column in self.columns.items():
            column.append(record.get(name))
        self._ids.append(rid)
        self._row_of[rid] = row
        if row >= len(self._alive):  # grow by doubling: upserts stay O(1) amortised
            grown = np.zeros(max(16, 2 * len(self._alive)), dtype=np.bool_)
            grown[: len(self._alive)] = self._alive
            self._alive = grown
        self._alive[row] = True
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
