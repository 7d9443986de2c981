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
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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
    cache = prepared_cache_path(engine, source, cache_dir, version)
    if cache.exists():
        engine.master.load_prepared(pq.read_table(cache))
        return True
    prepared = engine.master.prepare(pq.read_table(source), processes=processes, convert=convert)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    pq.write_table(prepared, partial)
    partial.replace(cache)  # atomic: a concurrent reader never sees half a file
    engine.master.load_prepared(prepared)
    return False
