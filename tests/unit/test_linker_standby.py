"""Standby replicas (services/linker/partitioned_store.py `StandbyFiles`), with a fake changelog reader:
which partitions an instance keeps replicas of, a replica tailing its changelog partition, and the
hand-over to the owner (the replica stops between chunks and closes; the owner's restore reads only what
the replica had not read)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.linker import changelog
from services.linker.partitioned_store import PartitionedLinkStore, standby_partitions
from services.linker.settings import LinkerSettings
from services.linker.store import FamilyState
from tests.support.linker import FAMILY_KEY
from tests.support.polling import poll_until


def _value(revision: int, family_key: str = FAMILY_KEY) -> bytes:
    state = FamilyState(revision, f"S-r{revision}", (1,), "team-a", ())
    return changelog.encode(changelog.FamilyRecord(family_key, state, {f"{family_key}-01": "P1"}, ()))


class Log:
    """Changelog partitions as lists; `gate`, when set, holds each chunk after the first until released."""

    def __init__(self) -> None:
        self.values: dict[int, list[bytes]] = {}
        self.gate: threading.Event | None = None
        self.held = threading.Event()

    def read(self, partition: int, from_offset: int) -> tuple[list[bytes], int]:
        values = self.values.get(partition, [])
        return values[from_offset:], len(values)

    def chunks(self, partition: int, from_offset: int, max_records: int) -> Iterator[tuple[list[bytes], int]]:
        values = self.values.get(partition, [])
        end = len(values)
        for n, at in enumerate(range(from_offset, end, max_records)):
            if n and self.gate is not None:
                self.held.set()
                self.gate.wait(5)
            chunk = values[at : min(at + max_records, end)]
            yield chunk, at + len(chunk)


def test_the_partitions_kept_as_replicas() -> None:
    assert standby_partitions({0, 1}, 4, "all") == {2, 3}
    assert standby_partitions({1}, 4, "1") == {2}
    assert standby_partitions({3}, 4, "2") == {0, 1}  # wraps around
    assert standby_partitions(set(), 4, "2") == {0, 1}
    assert standby_partitions({0, 1, 2, 3}, 4, "all") == set()
    assert standby_partitions({0}, 4, "") == standby_partitions({0}, 4, "0") == set()


def test_standby_needs_the_changelog_and_a_valid_value() -> None:
    with pytest.raises(ValueError, match="STANDBY_PARTITIONS needs"):
        LinkerSettings(standby_partitions="all")
    with pytest.raises(ValueError):
        LinkerSettings(standby_partitions="some", changelog_topic="cl")
    assert LinkerSettings(standby_partitions="2", changelog_topic="cl").standby_partitions == "2"


def test_a_replica_tails_its_partition_and_the_owner_restores_only_the_rest(tmp_path: Path) -> None:
    log = Log()
    log.values[2] = [_value(1), _value(2)]
    store = PartitionedLinkStore(tmp_path, changelog=log, chunk_records=10)
    standby = store.standby
    assert standby is not None
    standby.want({2, 3})
    assert standby.tail() == 2
    assert standby.position(2) == 2 and standby.position(3) == 0
    assert standby.tail() == 0  # current: nothing read
    log.values[2].append(_value(3))
    assert standby.tail() == 1 and standby.position(2) == 3
    log.values[2].append(_value(4))  # written after the replica's last pass
    # The partition is assigned here: the owner's open takes the replica over and reads only the tail.
    assert store.batch({FAMILY_KEY: 2}).families([FAMILY_KEY])[FAMILY_KEY].revision == 4
    assert store.restored[2] == 1
    assert standby.position(2) is None and standby.wanted() == {3}
    standby.want({2, 3})  # a late choice naming an owned partition: no replica of it
    assert standby.wanted() == {3}
    store.release([2])  # revoked again: it may be a replica once more
    standby.want({2})
    log.values[2].append(_value(5))
    assert standby.tail() == 1 and standby.position(2) == 5
    store.close()


def test_taking_a_partition_stops_a_running_replica_between_chunks(tmp_path: Path) -> None:
    log = Log()
    log.values[1] = [_value(r) for r in range(1, 7)]
    log.gate = threading.Event()
    store = PartitionedLinkStore(tmp_path, changelog=log, chunk_records=2)
    standby = store.standby
    assert standby is not None
    standby.want({1})
    read: list[int] = []
    tail = threading.Thread(target=lambda: read.append(standby.tail()))
    tail.start()
    assert log.held.wait(5)  # the replica applied its first chunk and waits for the next
    opened: list[int] = []
    owner = threading.Thread(target=lambda: opened.append(store.file(1).families([FAMILY_KEY])[FAMILY_KEY].revision))
    owner.start()
    poll_until(lambda: standby._taking, 5, "the owner never asked", interval_s=0.01)  # noqa: SLF001
    log.gate.set()
    log.gate = None  # the owner's own restore is not held
    tail.join(5)
    owner.join(5)
    assert read == [4]  # the chunk it was reading when asked, then it stopped
    assert opened == [6] and store.restored[1] == 2  # the owner read only the rest
    store.close()


def test_a_halted_standby_ends_its_pass_after_the_chunk_and_starts_no_other(tmp_path: Path) -> None:
    log = Log()
    log.values[1] = [_value(r) for r in range(1, 5)]
    log.values[2] = [_value(1)]
    log.gate = threading.Event()
    store = PartitionedLinkStore(tmp_path, changelog=log, chunk_records=2)
    standby = store.standby
    assert standby is not None
    standby.want({1, 2})
    read: list[int] = []
    tail = threading.Thread(target=lambda: read.append(standby.tail()))
    tail.start()
    assert log.held.wait(5)
    standby.halt()
    log.gate.set()
    tail.join(5)
    assert read == [4]  # partition 1's two chunks (the second was being read), partition 2 not begun
    assert standby.position(1) == 4 and standby.position(2) is None
    assert standby.tail() == 0
    store.close()
