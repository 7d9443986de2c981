"""Storage faults of the link store on REAL file systems, named by their cause.

A full tmpfs (disk full: the failed COMMIT's cause, not "cannot rollback - no transaction is
active"), a tmpfs remounted read-only (no 60 s of retries before a misleading "another linker"), and a
file another process holds (the only fault worth waiting for).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.storage_errors import LinkStoreError, StorageFault, describe_failure, storage_fault
from services.linker.store import FamilyState, LinkStore, StoreUpdate
from tests.integration.mounts import fill, remount, require_mount_privilege, tmpfs

FAM = "3603010001000100001001"


def _update(n: int, first: int = 0) -> StoreUpdate:
    families = {f"360301000100010{i:04d}001": FamilyState(1, f"S{i}", (1, 2)) for i in range(first, first + n)}
    return StoreUpdate(families=families)


def test_a_full_disk_is_named_as_such_and_the_store_recovers_when_space_is_freed(tmp_path: Path) -> None:
    require_mount_privilege()
    with tmpfs(tmp_path / "vol", "2m") as vol:
        store = LinkStore(vol / "links-p0.duckdb")
        store.apply(_update(10))
        filler = fill(vol)
        with pytest.raises(LinkStoreError) as raised:
            store.apply(_update(2000, first=10))
        assert raised.value.fault is StorageFault.DISK_FULL
        assert raised.value.path == str(vol / "links-p0.duckdb")
        assert "disk full" in str(raised.value) and "no transaction is active" not in str(raised.value)
        assert isinstance(raised.value.__cause__, duckdb.Error)  # the COMMIT's own error, kept as the cause
        assert len(store.families(_update(2010).families)) == 10  # nothing of the failed batch
        filler.unlink()
        store.apply(_update(2000, first=10))  # the same connection works again once there is space
        assert len(store.families(_update(2010).families)) == 2010
        store.close()
        reopened = LinkStore(vol / "links-p0.duckdb")
        assert reopened.counts()["families"] == 2010
        reopened.close()


def test_a_new_file_on_a_full_disk_is_disk_full(tmp_path: Path) -> None:
    require_mount_privilege()
    with tmpfs(tmp_path / "vol", "1m") as vol:
        filler = fill(vol)
        with pytest.raises(LinkStoreError) as raised:
            LinkStore(vol / "links-p1.duckdb")
        assert raised.value.fault is StorageFault.DISK_FULL
        assert sorted(p.name for p in vol.iterdir()) == ["filler"]  # no partial file left behind
        filler.unlink()
        store = LinkStore(vol / "links-p1.duckdb")  # once there is space, the file is created whole
        store.apply(_update(3))
        assert store.counts()["families"] == 3
        store.close()


def test_a_read_only_disk_fails_at_once_and_is_named_read_only(tmp_path: Path) -> None:
    require_mount_privilege()
    with tmpfs(tmp_path / "vol", "4m") as vol:
        LinkStore(vol / "links-p2.duckdb").close()
        remount(vol, "ro")
        for path in (vol / "links-p2.duckdb", vol / "links-p3.duckdb"):  # an existing and a new file
            with pytest.raises(LinkStoreError) as raised:
                LinkStore(path)
            assert raised.value.fault is StorageFault.READ_ONLY, path
            assert "another linker" not in str(raised.value)
        # The partitioned store waits only for a lock: here it gives up at once, not after 30 s.
        store = PartitionedLinkStore(vol, open_timeout_s=30)
        started = time.monotonic()
        with pytest.raises(LinkStoreError) as raised:
            store.batch({FAM: 2}).families([FAM])
        assert raised.value.fault is StorageFault.READ_ONLY
        assert time.monotonic() - started < 5
        remount(vol, "rw")


def test_a_file_held_by_another_process_is_named_locked_with_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "links-p0.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LinkStoreError) as raised:
            LinkStore(path)
        assert (raised.value.fault, raised.value.pid) == (StorageFault.LOCKED, holder.pid)
        assert "another linker" in str(raised.value)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (OSError(28, "No space left on device"), StorageFault.DISK_FULL),
        (OSError(30, "Read-only file system"), StorageFault.READ_ONLY),
        (duckdb.IOException('Could not write file "x.wal": No space left on device'), StorageFault.DISK_FULL),
        (duckdb.IOException('Cannot open file "x": Read-only file system'), StorageFault.READ_ONLY),
        (
            duckdb.IOException('Could not set lock on file "x": Conflicting lock is held in p (PID 7)'),
            StorageFault.LOCKED,
        ),
        (ValueError("Invalid revision"), None),
    ],
)
def test_classification_of_exceptions_and_their_causes(error: BaseException, fault: StorageFault | None) -> None:
    assert storage_fault(error) == fault
    try:
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("cannot rollback - no transaction is active") from inner
    except RuntimeError as outer:
        assert storage_fault(outer) == fault  # found behind what the caller saw
        text = describe_failure(outer)
    assert text == "RuntimeError" if fault is None else fault.value in text
