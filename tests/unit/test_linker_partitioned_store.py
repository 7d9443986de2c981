"""The per-partition link store: state follows a partition from one linker instance to the next."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.store import FamilyState, StoreUpdate

FAM_1, FAM_2 = "3603010001000100001001", "3603020001000100001001"
ROUTES = {FAM_1: 2, FAM_2: 0}  # each family's source partition


def _update() -> StoreUpdate:
    return StoreUpdate(
        families={FAM_1: FamilyState(2, "S1-r2", (1, 2)), FAM_2: FamilyState(1, "S2-r1", (1,))},
        minted={f"{FAM_1}-02": "u-a", f"{FAM_2}-01": "u-b"},
    )


def test_each_family_is_stored_in_its_partitions_file(tmp_path: Path) -> None:
    store = PartitionedLinkStore(tmp_path)
    batch = store.batch(ROUTES)
    batch.apply(_update())
    assert store.open_partitions() == [0, 2]
    assert sorted(p.name for p in tmp_path.glob("*.duckdb")) == ["links-p0.duckdb", "links-p2.duckdb"]
    assert store.file(2).families([FAM_1, FAM_2]) == {FAM_1: FamilyState(2, "S1-r2", (1, 2))}
    assert batch.families([FAM_1, FAM_2]) == {
        FAM_1: FamilyState(2, "S1-r2", (1, 2)),
        FAM_2: FamilyState(1, "S2-r1", (1,)),
    }
    assert batch.minted_ids([f"{FAM_1}-02", f"{FAM_2}-01"]) == {f"{FAM_1}-02": "u-a", f"{FAM_2}-01": "u-b"}
    assert store.counts() == {"families": 2, "minted_ids": 2}
    store.close()


def test_a_released_partition_is_picked_up_by_the_next_owner(tmp_path: Path) -> None:
    first = PartitionedLinkStore(tmp_path)
    first.batch(ROUTES).apply(_update())
    first.release([2])  # partition 2 moves to another instance
    assert first.open_partitions() == [0]
    second = PartitionedLinkStore(tmp_path)
    assert second.batch({FAM_1: 2}).families([FAM_1]) == {FAM_1: FamilyState(2, "S1-r2", (1, 2))}
    second.close()
    first.close()


def test_a_family_outside_the_batch_is_an_error(tmp_path: Path) -> None:
    store = PartitionedLinkStore(tmp_path)
    with pytest.raises(KeyError, match="not in this batch"):
        store.batch({FAM_2: 0}).families([FAM_1])
    store.batch({FAM_1: 1})  # an earlier batch's view: the next one does not know its families
    with pytest.raises(KeyError, match="not in this batch"):
        store.batch({FAM_2: 0}).writer(StoreUpdate(families={FAM_1: FamilyState(1, "S", (1,))}))
    assert store.open_partitions() == []


def test_opening_waits_while_another_process_still_holds_the_file(tmp_path: Path) -> None:
    # Another "instance" holds partition 3 for ~1.5 s (as during a rebalance), then releases it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom services.linker.store import LinkStore\n"
            f"s = LinkStore({str(tmp_path / 'links-p3.duckdb')!r})\nprint('held', flush=True)\n"
            "time.sleep(1.5)\ns.close()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    store = PartitionedLinkStore(tmp_path, open_timeout_s=30)
    started = time.monotonic()
    assert store.batch({FAM_1: 3}).families([FAM_1]) == {}
    assert time.monotonic() - started > 0.5  # it waited for the holder instead of failing
    holder.wait(timeout=30)
    # Now this process holds it; a second process with a short timeout gives up with a clear error.
    code = (
        "from services.linker.partitioned_store import PartitionedLinkStore\n"
        "from services.linker.storage_errors import LinkStoreError\n"
        f"s = PartitionedLinkStore(__import__('pathlib').Path({str(tmp_path)!r}), open_timeout_s=0.5)\n"
        "try:\n    s.batch({" + repr(FAM_1) + ": 3}).families([" + repr(FAM_1) + "])\nexcept LinkStoreError as e:\n"
        "    raise SystemExit(3 if e.fault == 'locked by another process' else 4)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 3, done.stderr
    store.close()


def test_a_failing_file_fails_the_write_only_after_the_other_files_finished(tmp_path: Path) -> None:
    store = PartitionedLinkStore(tmp_path)
    batch = store.batch(ROUTES)
    batch.families([FAM_1, FAM_2])  # opens both files
    failing, slow = store.file(0), store.file(2)
    slow_apply = slow.apply

    failed = threading.Event()

    def broken(update: StoreUpdate) -> None:
        failed.set()
        raise OSError("disk full")

    def late(update: StoreUpdate) -> None:
        assert failed.wait(5)  # still writing when partition 0 has already failed
        slow_apply(update)

    failing.apply = broken  # type: ignore[method-assign]
    slow.apply = late  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        batch.apply(_update())
    # The raise waited for partition 2's write: it is complete, partition 0 has nothing.
    assert batch.families([FAM_1, FAM_2]) == {FAM_1: FamilyState(2, "S1-r2", (1, 2))}
    store.close()
