"""A prepared-master cache: prepare a stored master once, start from the prepared file afterwards.

Normalising a million master rows in Python takes about a minute; encoding and indexing the prepared
columns takes seconds. The cache file is named by the source file's content hash, the preparer
version the caller passes (e.g. the comparison spec version) and the model's column set, so a changed
master, normaliser or model never reuses a stale file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from linkage.engine.index_store import Verify

# The prepared file's own layout: "family-1" carries the master's `relationship` (family tie-break).
_LAYOUT = "family-1"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepared_cache_path(engine: Any, source: Path, cache_dir: Path, version: str) -> Path:
    """Where the prepared form of `source` for this engine's model is cached."""
    key = hashlib.sha256(
        "|".join([_file_sha256(source), version, _LAYOUT, ",".join(engine.parameters.columns)]).encode()
    ).hexdigest()
    return cache_dir / f"prepared-master-{key[:20]}.parquet"


def prepared_master_cached(
    engine: Any,
    source: Path,
    *,
    cache_dir: Path,
    version: str,
    convert: Callable[[pa.Table], pa.Table] | None = None,
    processes: int = 1,
) -> tuple[pa.Table, bool]:
    """The prepared master of `source` (Parquet) from the cache, or prepared now and cached; True on a hit."""
    cache = prepared_cache_path(engine, source, cache_dir, version)
    if cache.exists():
        return pq.read_table(cache), True
    prepared = engine.master.prepare(pq.read_table(source), processes=processes, convert=convert)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    pq.write_table(prepared, partial)
    partial.replace(cache)  # atomic: a concurrent reader never sees half a file
    return prepared, False


def shard_layout_path(engine: Any, source: Path, cache_dir: Path, version: str) -> Path:
    """Where the shard layout of `source` (an Arrow file) is cached; its global index is in the folder
    of the same name with the suffix `.index` (`linkage.engine.index_store`)."""
    return prepared_cache_path(engine, source, cache_dir, version).with_suffix(".shard.arrow")


def load_shard_cached(
    engine: Any,
    source: Path,
    regions: Any,
    *,
    cache_dir: Path,
    version: str,
    convert: Callable[[pa.Table], pa.Table] | None = None,
    processes: int = 1,
    map_index: bool = True,
    verify: Verify = "checksums",
    fetched_rows_max: int | None = None,
) -> Any:
    """Load only `regions` of the master into `engine`, with a global index over the whole master
    (`linkage.engine.shard`); returns the `MasterShard`. The shard layout is cached as an Arrow file
    next to the prepared cache and memory-mapped: the whole master is read only to build the index.
    The index's arrays are cached as files next to the layout (`linkage.engine.index_store`), built
    once, and memory-mapped (`map_index`; False reads them into the heap, for comparison).
    `fetched_rows_max`: the shard's bound on rows of other regions kept (`MasterShard`; None: its default)."""
    from linkage.engine.index_store import index_cached, layout_stamp
    from linkage.engine.shard import MasterShard, TableRows, shard_layout

    layout_path = shard_layout_path(engine, source, cache_dir, version)
    if not layout_path.exists():
        prepared, _ = prepared_master_cached(
            engine, source, cache_dir=cache_dir, version=version, convert=convert, processes=processes
        )
        layout = shard_layout(prepared)
        del prepared
        partial = layout_path.with_suffix(f".{os.getpid()}.tmp")
        with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, layout.schema) as writer:
            writer.write_table(layout, max_chunksize=1 << 16)
        partial.replace(layout_path)
        del layout
    table = pa.ipc.open_file(pa.memory_map(str(layout_path), "r")).read_all()
    index, _ = index_cached(
        engine.parameters,
        TableRows(table),
        layout_path.with_suffix(".index"),
        layout_stamp(layout_path),
        engine.id_column,
        mmap=map_index,
        verify=verify,
    )
    shard = MasterShard(index, regions, **({} if fetched_rows_max is None else {"fetched_rows_max": fetched_rows_max}))
    engine.master.load_shard(shard)
    return shard


def load_master_cached(
    engine: Any,
    source: Path,
    *,
    cache_dir: Path,
    version: str,
    convert: Callable[[pa.Table], pa.Table] | None = None,
    processes: int = 1,
) -> bool:
    """Load `engine`'s master from `source` (Parquet), via the prepared cache; True on a cache hit."""
    prepared, hit = prepared_master_cached(
        engine, source, cache_dir=cache_dir, version=version, convert=convert, processes=processes
    )
    engine.master.load_prepared(prepared)
    return hit
