"""The master sharded by region: an engine holds the rows of some regions, a global index finds the rest.

A blocking rule that equates a region column (`REGION_COLUMNS`: the district, or the village whose
first digits are the district) only ever pairs a record with master rows of the record's own district.
The other rules (`global_rules`: NIK, name key + birth date, KK number in today's spec) can pair it with
anyone, anywhere: a person who moved, or a record with a wrong region. So a shard needs

- the master rows of its regions (`MasterShard.add_regions`, in bulk), and
- a `GlobalIndex` over the WHOLE master for the region-free rules: their value-based hashes
  (`linkage.engine.keys`, the same in every process), sorted, each with the row of the master in
  `shard_layout` (the prepared master sorted by region, kept outside the engine behind the `MasterRows`
  port: e.g. a memory-mapped Arrow file). Before a batch is scored (`MasterShard.ensure`) the batch's
  hashes are looked up, the rows found that the shard does not hold are fetched and appended to the
  engine (they stay, as cached rows), and a record whose own region the shard lacks brings that whole
  region in. The batch is then scored exactly as by an engine holding the whole master. The index's
  arrays (`GlobalIndex.arrays`) can be kept in files and used memory-mapped (`GlobalIndex.from_arrays`;
  the files: `linkage.engine.index_store`).

Exactly means: the same candidates, weights and choice. Three things of the whole master are kept for
that: term frequencies (`ValueCounts`, per value hash, so a shard's TF adjustments are the whole
master's), each row's position in the whole master (ties go to the lowest, as in the full engine:
the engine orders pairs by `PreparedMaster.ranks`), and each row's KK head worked out over the whole
master (the family tie-break). Master updates go through `MasterShard.upsert` / `remove`: the index
(hashes, ids, counts) follows every update; the engine holds the new row when its region is held
(a person who moved out leaves the shard, one who moved in joins it).

Pure: no I/O here beyond the `MasterRows` port.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from linkage.engine.blocking import RowIds, in_sorted
from linkage.engine.errors import EngineError
from linkage.engine.family import HEAD_KEY_COLUMN, IS_HEAD_COLUMN, MasterFamilies
from linkage.engine.keys import BlockingKeys, BlockingRule, value_hashes
from linkage.engine.master import PreparedMaster
from linkage.engine.params import ModelParameters

if TYPE_CHECKING:
    from linkage.engine.engine import LinkageEngine

#: The master column a shard is cut by (a region: the district, `village_code[:6]`).
REGION_COLUMN = "district_code"
#: Columns whose equality implies the same `REGION_COLUMN` value (a rule using one is regional).
REGION_COLUMNS: frozenset[str] = frozenset({"district_code", "village_code"})
#: Each row's position in the whole master (`shard_layout`).
RANK_COLUMN = "_rank"
#: Rows of other regions a shard keeps in its engine at most (`MasterShard.fetched_rows_max`): when a
#: batch's fetches would pass it, the engine is rebuilt from the regions held and the fetched rows go
#: (they are fetched again when a batch needs them). Without a bound they would grow with every record
#: linked: at 10M persons 571 rows per 20,000 records (bench/scale.py), about 0.75 a record at 270M.
FETCHED_ROWS_MAX = 250_000
#: The layout of `GlobalIndex.arrays` / `described` (a change makes stored index files be rebuilt).
INDEX_FORMAT = "global-index-3"


def global_rules(
    rules: Sequence[BlockingRule], region_columns: Iterable[str] = REGION_COLUMNS
) -> tuple[BlockingRule, ...]:
    """The blocking rules that can pair a record with a master row of another region: those that
    equate no region column (on either side)."""
    regional = frozenset(region_columns)
    return tuple(
        tuple(rule) for rule in rules if not any(left in regional or right in regional for left, right in rule)
    )


def tf_columns(params: ModelParameters) -> list[str]:
    """The columns whose term frequencies the model's levels read."""
    found = {level.tf_column for c in params.comparisons for level in c.levels if level.tf_column is not None}
    return sorted(found)


def shard_layout(prepared: pa.Table, region_column: str = REGION_COLUMN) -> pa.Table:
    """The prepared master as the shards read it: each row's position (`RANK_COLUMN`) and KK head
    (worked out over the whole master) added, rows sorted by region (stable), so a region is a range."""
    families = MasterFamilies(prepared)
    keys, heads = families.described()
    if len(keys) != prepared.num_rows:
        keys, heads = [None] * prepared.num_rows, [False] * prepared.num_rows
    table = (
        prepared.append_column(RANK_COLUMN, pa.array(np.arange(prepared.num_rows, dtype=np.int64)))
        .append_column(HEAD_KEY_COLUMN, pa.array(keys, type=pa.string()))
        .append_column(IS_HEAD_COLUMN, pa.array(heads, type=pa.bool_()))
    )
    order = pc.sort_indices(table, sort_keys=[(region_column, "ascending"), (RANK_COLUMN, "ascending")])
    return table.take(order)


class MasterRows(Protocol):
    """The shard-layout master kept outside the engine (memory-mapped file, object store, a topic's
    materialised table): rows by number."""

    @property
    def num_rows(self) -> int: ...

    @property
    def schema(self) -> pa.Schema: ...

    def column(self, name: str) -> pa.ChunkedArray:
        """A whole column (read once, to build the index)."""
        ...

    def take(self, rows: RowIds) -> pa.Table:
        """These rows, in this order."""
        ...


class TableRows:
    """`MasterRows` over an Arrow table (e.g. `pa.ipc.open_file(pa.memory_map(path)).read_all()`,
    whose pages the OS reads only when rows are taken)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._batches = table.to_batches()
        sizes = np.array([b.num_rows for b in self._batches], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)

    def take(self, rows: RowIds) -> pa.Table:
        # per record batch: `take` on a chunked table would first concatenate every chunk of every
        # column (the whole mapped file in memory, for a few rows)
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows) or not self._batches:
            return self.table.schema.empty_table()
        chunk = np.searchsorted(self._starts, rows, side="right") - 1
        order = np.argsort(chunk, kind="stable")
        parts = []
        for c in np.unique(chunk).tolist():
            local = rows[order][chunk[order] == c] - self._starts[c]
            parts.append(self._batches[c].take(pa.array(local, type=pa.int64())))
        taken = pa.Table.from_batches(parts, schema=self.table.schema)
        back = np.empty(len(rows), dtype=np.int64)
        back[order] = np.arange(len(rows), dtype=np.int64)
        return taken.take(pa.array(back, type=pa.int64())).combine_chunks()


#: The row store's encoding (`RowBlobs`): the separator between a row's values, and a null value.
ROW_SEPARATOR, ROW_NULL = "\x1f", "\x1e"
#: Column types the row store encodes as text and casts back exactly.
_ROW_TYPES = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_integer,
    pa.types.is_boolean,
    pa.types.is_date32,
)


class RowBlobs:
    """The shard-layout rows stored row by row: each row's values as text, joined by `ROW_SEPARATOR`
    (`ROW_NULL` for a null), one run of bytes per row (`offsets`, `data`).

    Fetching a few scattered rows (the rows the global index finds in other regions) from the columnar
    layout costs two or three pages per column per row, and one Arrow call per record batch touched:
    0.2-0.4 ms a row at 28 columns here (bench/shard.py). From this store a row is one run of bytes,
    usually within one page. Rows of whole regions are still read from the columnar layout.
    """

    def __init__(self, schema: pa.Schema, offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> None:
        self.schema = schema
        self.offsets = offsets
        self.data = data

    @classmethod
    def build(cls, rows: MasterRows, chunk_rows: int = 1 << 16) -> RowBlobs | None:
        """The store of `rows`, encoded chunk by chunk; None when a column's type is not one the store
        keeps exactly, or a value holds one of the separators (then rows are read from the layout)."""
        schema = rows.schema
        if not all(any(is_type(f.type) for is_type in _ROW_TYPES) for f in schema):
            return None
        columns = [rows.column(f.name) for f in schema]
        offsets: list[npt.NDArray[np.int64]] = [np.zeros(1, dtype=np.int64)]
        data: list[npt.NDArray[np.uint8]] = []
        written = 0
        for start in range(0, rows.num_rows, chunk_rows):
            texts = []
            for column in columns:
                text = column.slice(start, chunk_rows).combine_chunks().cast(pa.string())
                if (
                    pc.any(pc.match_substring(text, ROW_SEPARATOR)).as_py()
                    or pc.any(pc.match_substring(text, ROW_NULL)).as_py()
                ):
                    return None
                texts.append(text)
            joined = pc.binary_join_element_wise(
                *texts, ROW_SEPARATOR, null_handling="replace", null_replacement=ROW_NULL
            )
            joined = joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
            ends = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1, offset=4 * joined.offset)
            first, last = int(ends[0]), int(ends[-1])
            offsets.append(ends[1:].astype(np.int64) - first + written)
            data.append(np.frombuffer(joined.buffers()[2], dtype=np.uint8)[first:last].copy())
            written += last - first
        return cls(
            schema,
            np.concatenate(offsets),
            np.concatenate(data) if data else np.zeros(0, dtype=np.uint8),
        )

    def take(self, rows: RowIds) -> pa.Table:
        """These rows, in this order (as `TableRows.take` gives them)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows].tolist(), self.offsets[rows + 1].tolist()
        values = [bytes(self.data[a:b]).decode("utf-8").split(ROW_SEPARATOR) for a, b in zip(starts, ends, strict=True)]
        width = len(self.schema)
        if any(len(v) != width for v in values):
            raise EngineError("the row store does not fit the layout's columns")
        arrays = []
        for i, field in enumerate(self.schema):
            text = pa.array([None if v[i] == ROW_NULL else v[i] for v in values], type=pa.string())
            arrays.append(text.cast(field.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)


class SortedHashes:
    """Sorted uint64 hashes with a directory over their top bits: where each top-bits prefix starts.

    Finding the range of a hash is one probe into the directory and a binary search inside one bucket
    (about 8 hashes) instead of over all of them: at 30 M hashes about 25 probes, most of them cache
    (and page) misses, and the cost grows with the master. Hashes are uniform, so buckets are even;
    many equal hashes (a common key) make one bucket longer, not the others.
    """

    def __init__(self, keys: npt.NDArray[np.uint64], directory: npt.NDArray[np.integer] | None = None) -> None:
        self.keys = keys
        self.directory = self.directory_of(keys) if directory is None else directory
        buckets = len(self.directory) - 1
        if buckets < 2 or buckets & (buckets - 1) or int(self.directory[-1]) != len(keys):
            raise EngineError("a hash directory does not fit its hashes")
        self._shift = np.uint64(64 - (buckets.bit_length() - 1))

    @staticmethod
    def directory_of(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.integer]:
        """The directory of sorted `keys`: 2**bits + 1 positions (bits: about 8 keys per bucket)."""
        bits = min(max(len(keys).bit_length() - 3, 1), 40)
        edges = np.arange(1 << bits, dtype=np.uint64) << np.uint64(64 - bits)
        out: npt.NDArray[np.integer] = np.empty((1 << bits) + 1, dtype=np.uint32 if len(keys) < 2**32 else np.int64)
        out[:-1] = np.searchsorted(keys, edges)
        out[-1] = len(keys)
        return out

    def __len__(self) -> int:
        return len(self.keys)

    def ranges(self, hashes: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For each hash the range [lo, hi) of the keys equal to it (empty when absent)."""
        bucket = (hashes >> self._shift).astype(np.intp)
        start = self.directory[bucket].astype(np.int64)
        end = self.directory[bucket + 1].astype(np.int64)
        lo = self._bound(hashes, start, end, right=False)
        return lo, self._bound(hashes, lo, end, right=True)

    def _bound(
        self, hashes: npt.NDArray[np.uint64], lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64], *, right: bool
    ) -> npt.NDArray[np.int64]:
        """The first position in [lo, hi) whose key is >= the hash (> with `right`), vectorised."""
        lo, hi = lo.copy(), hi.copy()
        active = np.flatnonzero(lo < hi)
        while len(active):
            mid = (lo[active] + hi[active]) >> 1
            keys = self.keys[mid]
            go = keys <= hashes[active] if right else keys < hashes[active]
            lo[active[go]] = mid[go] + 1
            hi[active[~go]] = mid[~go]
            active = active[lo[active] < hi[active]]
        return lo


class ValueCounts:
    """How many live master rows hold each value of one column (by value hash), updated by upserts:
    sorted unique hashes with their counts, plus a dictionary of changes."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        hashes, valid = value_hashes(column)
        keys, counts = np.unique(hashes[valid], return_counts=True)
        self._adopt(keys, counts.astype(np.int64), int(valid.sum()))

    def _adopt(
        self,
        keys: npt.NDArray[np.uint64],
        counts: npt.NDArray[np.int64],
        non_null: int,
        directory: npt.NDArray[np.integer] | None = None,
    ) -> None:
        self._keys, self._counts = keys, counts
        self._sorted = SortedHashes(keys, directory)
        self._changed: dict[int, int] = {}
        self._changed_keys: npt.NDArray[np.uint64] | None = None
        self._non_null = non_null
        self.built_non_null = non_null  # as counted by the build (`arrays`), before any change

    @classmethod
    def from_arrays(
        cls,
        keys: npt.NDArray[np.uint64],
        counts: npt.NDArray[np.int64],
        non_null: int,
        directory: npt.NDArray[np.integer] | None = None,
    ) -> ValueCounts:
        """Counts kept elsewhere (e.g. memory-mapped files): `keys` sorted unique hashes, `counts` theirs,
        `directory` the hashes' (`SortedHashes`; None: worked out now)."""
        counts_ = cls.__new__(cls)
        counts_._adopt(keys, counts, non_null, directory)
        return counts_

    @property
    def arrays(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.integer]]:
        """The sorted hashes, their counts and the hashes' directory as built (changes by updates not included)."""
        return self._keys, self._counts, self._sorted.directory

    @property
    def non_null(self) -> int:
        return self._non_null

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._counts.nbytes + self._sorted.directory.nbytes)

    def count(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        out = np.zeros(len(hashes), dtype=np.int64)
        if len(self._keys):
            lo, hi = self._sorted.ranges(hashes)
            hit = lo < hi
            out[hit] = self._counts[lo[hit]]
        if self._changed:
            if self._changed_keys is None:
                self._changed_keys = np.sort(np.fromiter(self._changed, dtype=np.uint64, count=len(self._changed)))
            for i in np.flatnonzero(in_sorted(hashes, self._changed_keys)).tolist():
                out[i] += self._changed[int(hashes[i])]
        return out

    def change(self, column: pa.Array, delta: int) -> None:
        """Count the (one-row) `column`'s value `delta` more times."""
        hashes, valid = value_hashes(column)
        for h, ok in zip(hashes.tolist(), valid.tolist(), strict=True):
            if ok:
                self._changed[h] = self._changed.get(h, 0) + delta
                self._changed_keys = None
                self._non_null += delta


class GlobalIndex:
    """The whole master's region-free blocking keys, record ids, term frequencies and region ranges.

    Built once from the shard-layout master (`shard_layout`); rows are numbered as in that layout, and
    rows added by updates continue after it (their rank is the next full-engine row number, as an engine
    holding the whole master would give them).
    """

    _blobs: RowBlobs | None  # the rows stored row by row, for scattered fetches (None: not kept)

    def __init__(
        self,
        params: ModelParameters,
        rows: MasterRows,
        id_column: str = "record_id",
        *,
        region_column: str = REGION_COLUMN,
        region_columns: Iterable[str] = REGION_COLUMNS,
    ) -> None:
        self._setup(params, rows, id_column, region_column, region_columns)
        names = sorted({right for rule in self.rules for _, right in rule})
        table = pa.table({name: rows.column(name) for name in names}) if names else pa.table({})
        hashes, valid = (
            self.keys.matrix(table, 1)
            if names
            else (np.zeros((self.size, 0), np.int64), np.zeros((self.size, 0), np.bool_))
        )
        row_type = np.uint32 if self.size < 2**32 else np.int64
        self._rule_keys: list[npt.NDArray[np.uint64]] = []
        self._rule_rows: list[npt.NDArray[np.integer]] = []
        for i in range(len(self.rules)):
            at = np.flatnonzero(valid[:, i])
            order = np.argsort(hashes[at, i].view(np.uint64), kind="stable")
            self._rule_keys.append(hashes[at, i].view(np.uint64)[order])
            self._rule_rows.append(at[order].astype(row_type))
        del hashes, valid
        self._rule_sorted = [SortedHashes(keys) for keys in self._rule_keys]
        id_hashes, _ = value_hashes(rows.column(id_column).cast(pa.string()))
        order = np.argsort(id_hashes, kind="stable")
        self._id_keys, self._id_rows = id_hashes[order], order.astype(row_type)
        self.frequencies = {name: ValueCounts(rows.column(name)) for name in tf_columns(params)}
        regions = rows.column(region_column).combine_chunks()
        runs = pc.run_end_encode(regions)
        ends = np.asarray(runs.run_ends.to_numpy(), dtype=np.int64)
        self._set_regions(runs.values.to_pylist(), np.concatenate([[0], ends[:-1]]).astype(np.int64), ends)
        self._blobs = RowBlobs.build(rows)

    def _setup(
        self,
        params: ModelParameters,
        rows: MasterRows,
        id_column: str,
        region_column: str,
        region_columns: Iterable[str],
    ) -> None:
        self.rules = global_rules(params.blocking_rules, region_columns)
        self.keys = BlockingKeys(self.rules)
        self.id_column = id_column
        self.region_column = region_column
        self._rows = rows
        self.size = rows.num_rows
        # updates: rows after the layout's (prepared one-row tables), their keys, and replaced rows
        self._added: list[pa.Table] = []
        self._added_keys: dict[int, list[int]] = {}
        self._added_sorted: npt.NDArray[np.uint64] | None = None  # `_added_keys` sorted (on demand)
        self._added_ids: dict[str, int] = {}
        self._added_in: dict[object, list[int]] = {}  # region -> rows added there by updates
        self._dead: set[int] = set()
        self._dead_rows: RowIds | None = None  # `_dead` sorted (built on demand)
        self._blobs = None

    def _set_regions(self, names: list[object], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> None:
        self._region_names: list[object] = names
        self._region_starts = starts
        self._region_ends = ends
        self._region_of_name = {r: i for i, r in enumerate(self._region_names) if r is not None}

    # -- the built form (kept in files by `linkage.engine.index_store`) ------------------------------
    def described(self) -> dict[str, Any]:
        """What the arrays were built from and the small parts (JSON-able): rules, columns, regions."""
        return {
            "format": INDEX_FORMAT,
            "size": self.size,
            "rules": [[list(pair) for pair in rule] for rule in self.rules],
            "id_column": self.id_column,
            "region_column": self.region_column,
            "region_names": self._region_names,
            "frequencies": {name: counts.built_non_null for name, counts in self.frequencies.items()},
            "row_store": self._blobs is not None,
        }

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The big arrays by name (as built: updates since are not in them)."""
        out: dict[str, npt.NDArray[Any]] = {}
        for i, (keys, rows) in enumerate(zip(self._rule_keys, self._rule_rows, strict=True)):
            out[f"rule-{i}-keys"], out[f"rule-{i}-rows"] = keys, rows
            out[f"rule-{i}-directory"] = self._rule_sorted[i].directory
        out["id-keys"], out["id-rows"] = self._id_keys, self._id_rows
        for name, counts in self.frequencies.items():
            out[f"tf-{name}-keys"], out[f"tf-{name}-counts"], out[f"tf-{name}-directory"] = counts.arrays
        out["region-starts"], out["region-ends"] = self._region_starts, self._region_ends
        if self._blobs is not None:
            out["row-offsets"], out["row-bytes"] = self._blobs.offsets, self._blobs.data
        return out

    @classmethod
    def from_arrays(
        cls,
        params: ModelParameters,
        rows: MasterRows,
        described: Mapping[str, Any],
        arrays: Mapping[str, npt.NDArray[Any]],
        *,
        region_columns: Iterable[str] = REGION_COLUMNS,
    ) -> GlobalIndex:
        """An index over `rows` from the arrays a built one gave (`arrays`, `described`), e.g. opened
        memory-mapped: the arrays are used as they are, not copied. Raises `EngineError` when they do
        not fit this model and these rows (then build it anew)."""
        index = cls.__new__(cls)
        index._setup(params, rows, str(described["id_column"]), str(described["region_column"]), region_columns)
        expected = {
            "format": INDEX_FORMAT,
            "size": index.size,
            "rules": [[list(pair) for pair in rule] for rule in index.rules],
            "id_column": index.id_column,
            "region_column": index.region_column,
        }
        for field in ("format", "size", "rules", "id_column", "region_column"):
            if described.get(field) != expected[field]:
                raise EngineError(f"the global index files were built for another {field}")
        wanted = tf_columns(params)
        if sorted(described.get("frequencies", {})) != wanted:
            raise EngineError("the global index files were built for other term-frequency columns")
        try:
            index._rule_keys = [arrays[f"rule-{i}-keys"] for i in range(len(index.rules))]
            index._rule_sorted = [
                SortedHashes(keys, arrays[f"rule-{i}-directory"]) for i, keys in enumerate(index._rule_keys)
            ]
            index._rule_rows = [arrays[f"rule-{i}-rows"] for i in range(len(index.rules))]
            index._id_keys, index._id_rows = arrays["id-keys"], arrays["id-rows"]
            index.frequencies = {
                name: ValueCounts.from_arrays(
                    arrays[f"tf-{name}-keys"],
                    arrays[f"tf-{name}-counts"],
                    int(described["frequencies"][name]),
                    arrays[f"tf-{name}-directory"],
                )
                for name in wanted
            }
            starts, ends = arrays["region-starts"], arrays["region-ends"]
            if described.get("row_store"):
                index._blobs = RowBlobs(rows.schema, arrays["row-offsets"], arrays["row-bytes"])
        except KeyError as missing:
            raise EngineError(f"the global index files lack {missing}") from None
        names = list(described["region_names"])
        if len(index._id_keys) != index.size or len(index._id_rows) != index.size:
            raise EngineError("the global index files' id index does not cover the master")
        if len(starts) != len(names) or len(ends) != len(names) or (len(ends) and int(ends[-1]) != index.size):
            raise EngineError("the global index files' regions do not cover the master")
        for keys, rule_rows in zip(index._rule_keys, index._rule_rows, strict=True):
            if len(keys) != len(rule_rows) or len(keys) > index.size:
                raise EngineError("the global index files' key arrays do not fit the master")
        if index._blobs is not None and (
            len(index._blobs.offsets) != index.size + 1 or int(index._blobs.offsets[-1]) != len(index._blobs.data)
        ):
            raise EngineError("the global index files' row store does not cover the master")
        index._set_regions(names, starts, ends)
        return index

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def entries(self) -> int:
        """Key entries (one per row and region-free rule that applies to it)."""
        return sum(len(k) for k in self._rule_keys)

    @property
    def nbytes(self) -> int:
        """Bytes of the sorted arrays: keys and rows of each rule, the id index and the term counts."""
        rules = sum(k.nbytes + r.nbytes for k, r in zip(self._rule_keys, self._rule_rows, strict=True))
        rules += sum(h.directory.nbytes for h in self._rule_sorted)
        counts = sum(c.nbytes for c in self.frequencies.values())
        return int(rules + self._id_keys.nbytes + self._id_rows.nbytes + counts)

    @property
    def regions(self) -> list[object]:
        """The regions of the master (in layout order)."""
        return [r for r in self._region_names if r is not None]

    # -- reading -------------------------------------------------------------------------------------
    def lookup(self, hashes: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> RowIds:
        """The live rows (sorted, unique) any of these query hashes (`keys.matrix(query, 0)`) finds."""
        found: list[RowIds] = []
        for i, (sorted_keys, rows) in enumerate(zip(self._rule_sorted, self._rule_rows, strict=True)):
            wanted = np.unique(hashes[valid[:, i], i].view(np.uint64))
            lo, hi = sorted_keys.ranges(wanted)
            counts = hi - lo
            if counts.sum():
                starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
                found.append(rows[starts + np.arange(int(counts.sum()))].astype(np.int64))
            if self._added_keys:
                if self._added_sorted is None:
                    added = np.fromiter(self._added_keys, dtype=np.uint64, count=len(self._added_keys))
                    self._added_sorted = np.sort(added)
                # only the keys some update added go through the dictionary (not a loop over the batch)
                hits = wanted[in_sorted(wanted, self._added_sorted)]
                extra = [r for h in hits.tolist() for r in self._added_keys[h]]
                if extra:
                    found.append(np.array(extra, dtype=np.int64))
        if not found:
            return np.empty(0, dtype=np.int64)
        rows_found = np.unique(np.concatenate(found))
        if self._dead:
            rows_found = rows_found[~in_sorted(rows_found, self._dead_sorted())]
        return rows_found

    def _dead_sorted(self) -> RowIds:
        if self._dead_rows is None:
            self._dead_rows = np.sort(np.fromiter(self._dead, dtype=np.int64, count=len(self._dead)))
        return self._dead_rows

    def region_index(self, rows: RowIds) -> npt.NDArray[np.int64]:
        """The region number (`regions` order, -1: none) of each layout row (rows of updates: -1)."""
        out = np.searchsorted(self._region_starts, rows, side="right").astype(np.int64) - 1
        out[rows >= self.size] = -1
        return out

    def region_number(self, region: object) -> int | None:
        return self._region_of_name.get(region)

    def region_name(self, number: int) -> object:
        return self._region_names[number]

    def rows_of_region(self, region: object) -> RowIds:
        """The live rows of one region: its layout range and the updates that put a row there."""
        number = self._region_of_name.get(region)
        parts: list[RowIds] = []
        if number is not None:
            parts.append(np.arange(self._region_starts[number], self._region_ends[number], dtype=np.int64))
        parts.append(np.array(self._added_in.get(region, []), dtype=np.int64))
        rows = np.concatenate(parts)
        if self._dead:
            rows = rows[~in_sorted(rows, self._dead_sorted())]
        return rows

    def added_region(self, row: int) -> object:
        """The region of a row added by an update."""
        return self._added[row - self.size].column(self.region_column)[0].as_py()

    def take(self, rows: RowIds, schema: pa.Schema, *, scattered: bool = False) -> pa.Table:
        """The rows (layout rows from the `MasterRows` port, updated rows from memory), in `schema`.
        `scattered`: a few rows from anywhere (read from the row store when there is one, `RowBlobs`)
        rather than whole regions (read from the columnar layout)."""
        base = rows[rows < self.size]
        parts = [self._layout_rows(base, scattered).select(schema.names).cast(schema)] if len(base) else []
        for row in rows[rows >= self.size].tolist():
            parts.append(self._added[row - self.size])
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts).combine_chunks()

    def _layout_rows(self, rows: RowIds, scattered: bool) -> pa.Table:
        return self._blobs.take(rows) if scattered and self._blobs is not None else self._rows.take(rows)

    @property
    def has_row_store(self) -> bool:
        return self._blobs is not None

    def ranks(self, rows: RowIds, taken: pa.Table) -> npt.NDArray[np.int64]:
        """Each taken row's position in the whole master."""
        return np.asarray(taken.column(RANK_COLUMN).to_numpy(), dtype=np.int64)

    def row_of(self, record_id: str) -> int | None:
        """The live row with this id, None when the master has none."""
        rid = str(record_id)
        if rid in self._added_ids:
            row = self._added_ids[rid]
            return None if row in self._dead else row
        h = value_hashes(pa.array([rid], type=pa.string()))[0][0]
        lo = int(np.searchsorted(self._id_keys, h, side="left"))
        hi = int(np.searchsorted(self._id_keys, h, side="right"))
        for row in self._id_rows[lo:hi].astype(np.int64).tolist():  # check the id itself (collisions)
            taken = self._layout_rows(np.array([row], dtype=np.int64), True)
            if row not in self._dead and str(taken[self.id_column][0].as_py()) == rid:
                return int(row)
        return None

    # -- updates -------------------------------------------------------------------------------------
    def _values(self, row: int, schema: pa.Schema) -> pa.Table:
        return self.take(np.array([row], dtype=np.int64), schema, scattered=True)

    def remove(self, record_id: str, schema: pa.Schema) -> int | None:
        """Mark the live row with this id replaced/removed (its term counts go); returns it."""
        row = self.row_of(record_id)
        if row is None:
            return None
        old = self._values(row, schema)
        for name, counts in self.frequencies.items():
            counts.change(old.column(name).combine_chunks(), -1)
        self._dead.add(row)
        self._dead_rows = None
        return row

    def upsert(self, record: pa.Table, schema: pa.Schema) -> tuple[int, int | None]:
        """Add a one-row prepared record (replacing the live row with its id): (new row, old row)."""
        rid = str(record.column(self.id_column)[0].as_py())
        old = self.remove(rid, schema)
        row = self.size + len(self._added)
        columns = []
        for field in schema:
            if field.name == RANK_COLUMN:
                columns.append(pa.array([row], type=field.type))
            elif field.name in record.column_names:
                columns.append(record.column(field.name).combine_chunks().cast(field.type))
            else:
                columns.append(pa.nulls(1, field.type))
        stored = pa.Table.from_arrays(columns, schema=schema)
        self._added.append(stored)
        self._added_ids[rid] = row
        self._added_in.setdefault(stored.column(self.region_column)[0].as_py(), []).append(row)
        hashes, valid = self.keys.matrix(stored, 1)
        for h, ok in zip(hashes[0].view(np.uint64).tolist(), valid[0].tolist(), strict=True):
            if ok:
                self._added_keys.setdefault(h, []).append(row)
                self._added_sorted = None
        for name, counts in self.frequencies.items():
            counts.change(stored.column(name).combine_chunks(), +1)
        return row, old


@dataclass
class ShardStats:
    """What a shard has done: rows held, fetched through the global index, regions loaded on demand."""

    lookups: int = 0
    found: int = 0
    fetched: int = 0
    regions_on_demand: int = 0
    fetched_dropped: int = 0  # fetched rows dropped when they passed `fetched_rows_max`
    resets: int = 0  # engine rebuilds that dropped them
    lookup_seconds: float = 0.0  # hashing a batch's keys and searching the global index
    fetch_seconds: float = 0.0  # taking the rows found elsewhere and appending them to the engine


class MasterShard:
    """The rows of some regions in an engine, and the rows of other regions the index finds."""

    def __init__(
        self, index: GlobalIndex, regions: Iterable[object], *, fetched_rows_max: int = FETCHED_ROWS_MAX
    ) -> None:
        if fetched_rows_max < 1:
            raise EngineError("fetched_rows_max must be at least 1")
        self.index = index
        self.fetched_rows_max = fetched_rows_max
        self._initial = list(dict.fromkeys(regions))
        self._engine: LinkageEngine | None = None
        self._held = np.zeros(len(index._region_names), dtype=np.bool_)
        self._held_added_regions: set[object] = set()
        self._cached: RowIds = np.empty(0, dtype=np.int64)  # rows of other regions held (fetched), sorted
        self._schema: pa.Schema | None = None
        self.stats = ShardStats()

    @property
    def regions(self) -> list[object]:
        """The regions held whole."""
        return [self.index.region_name(int(i)) for i in np.flatnonzero(self._held)] + sorted(
            (r for r in self._held_added_regions if self.index.region_number(r) is None), key=str
        )

    def attach(self, engine: LinkageEngine) -> None:
        """Build the engine's master from the initial regions (`LinkageEngine.master.load_shard`)."""
        self._engine = engine
        rows = self._region_rows(self._initial)
        empty = self.index._rows.take(np.empty(0, dtype=np.int64))
        self._schema = empty.schema
        table = self.index.take(rows, self._schema)
        prepared = PreparedMaster(engine.parameters, table, engine.id_column, self.index.ranks(rows, table))
        for name, counts in self.index.frequencies.items():
            prepared.columns[name].count_globally(counts)
        engine.master.install(prepared)
        self._mark_held(self._initial)

    def _engine_master(self) -> PreparedMaster:
        if self._engine is None:
            raise EngineError("attach the shard to an engine first (engine.master.load_shard)")
        return self._engine.master.prepared

    def _region_rows(self, regions: Sequence[object]) -> RowIds:
        parts = [self.index.rows_of_region(r) for r in regions]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _mark_held(self, regions: Iterable[object]) -> None:
        for region in regions:
            number = self.index.region_number(region)
            if number is not None:
                self._held[number] = True
            self._held_added_regions.add(region)

    def holds_region(self, region: object) -> bool:
        return region in self._held_added_regions

    def _append(self, rows: RowIds, *, scattered: bool = False) -> None:
        master = self._engine_master()
        assert self._schema is not None
        table = self.index.take(rows, self._schema, scattered=scattered)
        master.extend(table, self.index.ranks(rows, table))

    def add_regions(self, regions: Iterable[object]) -> int:
        """Hold these regions whole from now on (rows already held as fetched rows stay); the rows added."""
        new = [r for r in dict.fromkeys(regions) if not self.holds_region(r)]
        rows = self._region_rows(new)
        rows = rows[~self.held(rows)]
        self._append(rows)
        self._mark_held(new)
        return len(rows)

    def drop_regions(self, regions: Iterable[object]) -> int:
        """Hold these regions no more (e.g. their partitions went to another instance); the rows the
        engine dropped. The engine's master is rebuilt from the regions still held (as `attach` builds
        it), so the memory goes; rows of other regions fetched earlier go too (the index finds them
        again when a batch needs them). A later `add_regions` of a dropped region loads it again."""
        gone = {r for r in regions if self.holds_region(r)}
        if not gone:
            return 0
        return self._rebuild([r for r in self.regions if r not in gone])

    def _rebuild(self, regions: list[object]) -> int:
        """The engine's master built anew from these regions (fetched rows gone); the rows it dropped."""
        assert self._engine is not None
        before = len(self._engine.master)
        self._held[:] = False
        self._held_added_regions = set()
        self._cached = np.empty(0, dtype=np.int64)
        self._initial = regions
        self.attach(self._engine)
        return before - len(self._engine.master)

    def held(self, rows: RowIds) -> npt.NDArray[np.bool_]:
        """Which of these index rows the engine holds (its regions' rows, and fetched ones)."""
        regions = self.index.region_index(rows)
        out = np.where(regions >= 0, self._held[np.maximum(regions, 0)], False)
        for i in np.flatnonzero(rows >= self.index.size).tolist():
            out[i] = self.index.added_region(int(rows[i])) in self._held_added_regions
        if len(self._cached):
            out |= in_sorted(rows, self._cached)  # sorted, unique (np.union1d)
        return out

    def ensure(self, prepared: pa.Table) -> None:
        """Before a batch of prepared query records is scored: hold the regions of its records, and
        fetch the rows of other regions its region-free keys find."""
        if not prepared.num_rows:
            return
        column = self.index.region_column
        if column in prepared.column_names:
            wanted = [r for r in pc.unique(prepared.column(column)).to_pylist() if r is not None]
            missing = [r for r in wanted if not self.holds_region(r) and self.index.region_number(r) is not None]
            if missing:
                self.stats.regions_on_demand += len(missing)
                self.add_regions(missing)
        started = time.perf_counter()
        hashes, valid = self.index.keys.matrix(prepared, 0)
        rows = self.index.lookup(hashes, valid)
        other = rows[~self.held(rows)]
        looked = time.perf_counter()
        self.stats.lookups += 1
        self.stats.found += len(rows)
        self.stats.lookup_seconds += looked - started
        if len(other) and len(self._cached) + len(other) > self.fetched_rows_max:
            # bounded: the rows fetched so far go (rebuilt from the regions held, as at assignment)
            self.stats.fetched_dropped += len(self._cached)
            self.stats.resets += 1
            self._rebuild(self.regions)
            other = rows[~self.held(rows)]
        if len(other):
            self.stats.fetched += len(other)
            self._append(other, scattered=True)
            self._cached = np.union1d(self._cached, other)
            self.stats.fetch_seconds += time.perf_counter() - looked

    def upsert(self, record: pa.Table) -> None:
        """A master update (one prepared record): the index follows; the engine holds the new row when
        its region is held, and never the old one."""
        master = self._engine_master()
        assert self._schema is not None
        rid = str(record.column(self.index.id_column)[0].as_py())
        row, old = self.index.upsert(record, self._schema)
        if old is not None:
            self._cached = self._cached[self._cached != old]
        if master.has(rid):
            master.remove(rid)
        region = (
            record.column(self.index.region_column)[0].as_py()
            if self.index.region_column in (record.column_names)
            else None
        )
        if self.holds_region(region):
            stored = self.index.take(np.array([row], dtype=np.int64), self._schema, scattered=True)
            master.upsert(stored.to_pylist()[0], rank=row)

    def remove(self, record_id: str) -> bool:
        """Remove a master record everywhere; False when the master has no such id."""
        master = self._engine_master()
        assert self._schema is not None
        old = self.index.remove(record_id, self._schema)
        if old is not None:
            self._cached = self._cached[self._cached != old]
        local = master.remove(record_id) if master.has(record_id) else False
        return old is not None or local
