"""Storage failures of the linker's DuckDB files, named by their cause.

DuckDB reports them as text: a full disk as `Could not write file "...": No space left on device`
(and then, when the failed COMMIT is followed by a ROLLBACK, only as "cannot rollback - no transaction
is active"), a read-only disk as `Cannot open file "...": Read-only file system`, a file another
process holds as `Could not set lock on file "...": Conflicting lock is held in ... (PID n)`.
`storage_fault` maps an exception (and the exceptions it was raised from) to one of three causes, so
the log says what an operator must fix, and only a lock is worth waiting for (a rebalance releases
it; a full or read-only disk does not heal by retrying). The descriptions hold the file path and the
cause only: never a row, key or value.
"""

from __future__ import annotations

import errno
import re
from enum import StrEnum
from pathlib import Path


class StorageFault(StrEnum):
    """Why a link-store file could not be opened or written."""

    DISK_FULL = "disk full"
    READ_ONLY = "read-only"
    LOCKED = "locked by another process"


_REMEDY = {
    StorageFault.DISK_FULL: "the volume has no space left: free space or grow the volume, then restart",
    StorageFault.READ_ONLY: "the file system is read-only or not writable by this user: remount it "
    "read-write or fix the permissions, then restart",
    StorageFault.LOCKED: "another process holds the file: is another linker using this state directory? "
    "Give each instance its own REGSOSEK_LINKER_STATE_DIR",
}
_ERRNO = {
    errno.ENOSPC: StorageFault.DISK_FULL,
    errno.EDQUOT: StorageFault.DISK_FULL,
    errno.EROFS: StorageFault.READ_ONLY,
    errno.EACCES: StorageFault.READ_ONLY,
    errno.EPERM: StorageFault.READ_ONLY,
}
_TEXT = (
    (StorageFault.DISK_FULL, ("no space left on device", "disk quota exceeded", "out of space", "disk is full")),
    (StorageFault.READ_ONLY, ("read-only file system", "permission denied", "operation not permitted")),
    (StorageFault.LOCKED, ("conflicting lock", "could not set lock")),
)
_PID = re.compile(r"\(PID (\d+)\)")


class LinkStoreError(RuntimeError):
    """A link-store file could not be opened or written; `fault` says why, the message what to do."""

    def __init__(self, fault: StorageFault, path: Path | str, action: str, pid: int | None = None) -> None:
        holder = f" (PID {pid})" if pid is not None else ""
        super().__init__(f"link store {path}: cannot {action}: {fault.value}{holder}; {_REMEDY[fault]}")
        self.fault = fault
        self.path = str(path)
        self.pid = pid


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def storage_fault(exc: BaseException) -> StorageFault | None:
    """The storage cause of `exc` or of an exception it was raised from; None: not a storage fault."""
    for err in _chain(exc):
        if isinstance(err, LinkStoreError):
            return err.fault
        if isinstance(err, OSError) and err.errno in _ERRNO:
            return _ERRNO[err.errno]
        text = str(err).lower()
        for fault, needles in _TEXT:
            if any(n in text for n in needles):
                return fault
    return None


def lock_holder(exc: BaseException) -> int | None:
    """The PID DuckDB names as the holder of a conflicting lock, if any."""
    for err in _chain(exc):
        found = _PID.search(str(err))
        if found:
            return int(found.group(1))
    return None


def describe_failure(exc: BaseException) -> str:
    """A log-safe description of why a batch failed: the storage cause with its remedy, else the type."""
    for err in _chain(exc):
        if isinstance(err, LinkStoreError):
            return str(err)
    fault = storage_fault(exc)
    if fault is None:
        return type(exc).__name__
    return f"{type(exc).__name__}: {fault.value}; {_REMEDY[fault]}"
