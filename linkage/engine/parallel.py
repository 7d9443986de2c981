"""Using both cores: worker processes forked AFTER the master is prepared.

A forked child shares the parent's prepared master copy-on-write (numpy arrays and vocabularies are
only read while linking), so a second worker costs little memory and no second start-up. The same
trick prepares a large master in parallel: the table is split, each chunk prepared in a child.
Fork is POSIX-only; on other platforms the pool falls back to one process.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

import pyarrow as pa

from linkage.engine.decisions import LinkDecision

# The engine / preparer the forked children use: set just before forking, inherited by the fork.
_FORKED: dict[str, Any] = {}


def _pack(batch: Any) -> Any:
    """Arrow IPC bytes of a table batch: pickling a sliced table would ship its whole parent buffer."""
    if not isinstance(batch, pa.Table):
        return batch
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    return sink.getvalue()


def _unpack(packed: Any) -> Any:
    if isinstance(packed, pa.Buffer):
        return pa.ipc.open_stream(packed).read_all()
    return packed


def _link_in_child(packed: Any) -> list[LinkDecision]:
    decisions: list[LinkDecision] = _FORKED["engine"].link(_unpack(packed))
    return decisions


def _prepare_in_child(bounds: tuple[int, int]) -> pa.Table:
    start, stop = bounds
    prepared: pa.Table = _FORKED["preparer"](_FORKED["table"].slice(start, stop - start))
    return prepared


def _fork_context() -> Any | None:
    try:
        return mp.get_context("fork")
    except ValueError:
        return None


class EngineWorkers:
    """A pool of forked processes that link batches with the parent's engine.

    Use as a context manager after the master is loaded:
    `with EngineWorkers(engine, processes=2) as workers: results = workers.link_batches(batches)`.
    Updates made to the master after the fork are not seen by the workers: re-create the pool.
    """

    def __init__(self, engine: Any, processes: int = 2) -> None:
        self._engine = engine
        self._processes = processes
        self._pool: Any = None

    def __enter__(self) -> EngineWorkers:
        context = _fork_context()
        if context is not None and self._processes > 1:
            _FORKED["engine"] = self._engine
            self._pool = context.Pool(self._processes)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        _FORKED.pop("engine", None)

    def link_batches(self, batches: Iterable[Any]) -> list[list[LinkDecision]]:
        """Decisions for each batch, in order, spread over the workers."""
        if self._pool is None:
            return [self._engine.link(batch) for batch in batches]
        packed = [_pack(batch) for batch in batches]
        results: list[list[LinkDecision]] = self._pool.map(_link_in_child, packed, chunksize=1)
        return results


def prepare_in_parallel(
    preparer: Callable[[pa.Table], pa.Table], table: pa.Table, processes: int = 2, chunk_rows: int = 50_000
) -> pa.Table:
    """`preparer(table)` computed on `processes` forked children in chunks of `chunk_rows`, concatenated
    in order. Chunks keep each child's transient Python objects small (peak RSS), and the parent only
    ever holds Arrow tables."""
    context = _fork_context()
    if context is None or processes < 2 or table.num_rows <= chunk_rows:
        return preparer(table)
    bounds: Sequence[tuple[int, int]] = [
        (start, min(start + chunk_rows, table.num_rows)) for start in range(0, table.num_rows, chunk_rows)
    ]
    _FORKED["preparer"], _FORKED["table"] = preparer, table
    try:
        with context.Pool(processes, maxtasksperchild=4) as pool:
            parts: list[pa.Table] = list(pool.imap(_prepare_in_child, bounds, chunksize=1))
    finally:
        _FORKED.pop("preparer", None)
        _FORKED.pop("table", None)
    return pa.concat_tables(parts)
