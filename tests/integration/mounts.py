"""Real small file systems for the storage-fault tests: a tmpfs of a given size, remountable read-only.

Mounting needs root. Off CI a non-root run skips these tests; in CI (env CI set) they must run, so
there a missing privilege fails the test instead of hiding it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def require_mount_privilege() -> None:
    """Skip when mounting is impossible here (not root) and this is not CI."""
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("mounting a tmpfs needs root (CI runs these tests as root)")


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of `size` (e.g. "4m") mounted at `path`; unmounted on exit."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        # Lazy: a process the test failed to stop must not leave the mount (or the test) hanging.
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    """Remount `path` read-only ("ro") or read-write ("rw")."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path) -> Path:
    """Write a file into `path` until the file system is full; returns the filler (delete it to free)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (65_536, 4096, 1):  # down to the last byte the block allocator can still give
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler
