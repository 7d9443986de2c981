"""The global index (`linkage.engine.shard.GlobalIndex`) kept in files and opened memory-mapped.

At national scale the index has about 857 million key entries (about 14.6 GB): held in each instance's
heap it would cost that much memory per instance. Kept as one `.npy` file per array in a folder next
to the shard layout, built once per master version and layout, and opened with
`np.load(mmap_mode="r")`, an instance's resident memory for it is only the pages its lookups touch
(shared through the OS page cache by every process of the host), not heap.

The folder is written whole under a temporary name and renamed into place (a reader never sees half
of it). `manifest.json` (written last) records what the arrays were built from (`GlobalIndex.described`),
the layout file they index (its size and modification time: a rebuilt layout makes them stale), and per
array its dtype, shape, byte size and CRC-32. On opening, a folder that is missing, of another layout or
model, truncated or whose checksums differ is not used (`open_index` returns None) and the caller
builds it anew (`index_cached`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from linkage.engine.errors import EngineError
from linkage.engine.params import ModelParameters
from linkage.engine.shard import GlobalIndex, MasterRows

MANIFEST = "manifest.json"
#: "checksums": every file's CRC-32 is checked on opening (reads the files once, about 2 GB/s here);
#: "sizes": headers, dtypes, shapes and byte sizes only (catches partial files, not flipped bytes).
Verify = Literal["checksums", "sizes"]


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _file_name(array: str) -> str:
    return f"{array}.npy"


def layout_stamp(layout: Path) -> dict[str, int]:
    """What identifies the layout file an index was built over (a rebuilt layout is another file)."""
    stat = layout.stat()
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def save_index(index: GlobalIndex, folder: Path, stamp: Mapping[str, Any]) -> None:
    """Write `index`'s arrays and manifest to `folder`, atomically (temporary folder + rename). A
    folder already there is replaced (it was found unusable); if another process has put a valid one
    in place meanwhile, the rename fails and that one stays."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}
    for name, array in index.arrays().items():
        path = tmp / _file_name(name)
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        files[name] = {
            "dtype": np.dtype(array.dtype).str,
            "shape": list(array.shape),
            "bytes": path.stat().st_size,
            "crc32": _crc32(path),
        }
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
    manifest = {"described": index.described(), "layout": dict(stamp), "files": files}
    with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if folder.exists():
        stale = folder.with_name(f"{folder.name}.{os.getpid()}.stale")
        shutil.rmtree(stale, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            folder.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process's folder is in place: theirs stays


def open_index(
    params: ModelParameters,
    rows: MasterRows,
    folder: Path,
    stamp: Mapping[str, Any],
    id_column: str = "record_id",
    *,
    mmap: bool = True,
    verify: Verify = "checksums",
) -> GlobalIndex | None:
    """The index stored in `folder` over `rows`, its arrays memory-mapped (`mmap`, else read into
    memory); None when the folder is missing or unusable: another layout, model or format, a file
    missing, truncated or (with `verify="checksums"`) changed."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("layout") != dict(stamp) or manifest["described"].get("id_column") != id_column:
            return None
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, expected in dict(manifest["files"]).items():
            path = folder / _file_name(name)
            if path.stat().st_size != expected["bytes"]:
                return None
            if verify == "checksums" and _crc32(path) != expected["crc32"]:
                return None
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            if np.dtype(array.dtype).str != expected["dtype"] or list(array.shape) != expected["shape"]:
                return None
            arrays[name] = array
        return GlobalIndex.from_arrays(params, rows, manifest["described"], arrays)
    except (OSError, ValueError, KeyError, TypeError, EngineError):
        return None


def index_cached(
    params: ModelParameters,
    rows: MasterRows,
    folder: Path,
    stamp: Mapping[str, Any],
    id_column: str = "record_id",
    *,
    mmap: bool = True,
    verify: Verify = "checksums",
) -> tuple[GlobalIndex, bool]:
    """The index over `rows` from `folder`, or built now, stored there and opened from it; True when
    the stored one was used."""
    found = open_index(params, rows, folder, stamp, id_column, mmap=mmap, verify=verify)
    if found is not None:
        return found, True
    built = GlobalIndex(params, rows, id_column)
    save_index(built, folder, stamp)
    del built  # its arrays are freed: the instance keeps the mapped files, not a heap copy
    opened = open_index(params, rows, folder, stamp, id_column, mmap=mmap, verify="sizes")
    if opened is None:
        raise EngineError(f"the global index written to {folder} cannot be opened")
    return opened, False
