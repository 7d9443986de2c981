"""The link store split by source partition, so its state moves with a partition on a rebalance.

One DuckDB file per partition of the submissions topic (`<link_store_dir>/links-p<N>.duckdb`). Each
family key always arrives on the same partition, so each file holds exactly the families (and their
members' minted ids) of one partition. A file is opened when a batch first needs it and closed when
the partition is revoked. When instances of one consumer group share `link_store_dir` (one host or a
shared volume), the new owner of a partition opens the file the old owner closed and knows every
revision stored before the move. DuckDB allows one process per file, so opening retries for a while
when the file is locked: during a rebalance the old owner may still be closing it (any other storage
fault, a full or read-only disk, fails at once: services/linker/storage_errors.py).

The handler asks for the view of a batch (`batch`: each of its family keys with the partition its
record arrived on) and passes it to the pipeline; the view has the read and write methods of a
`LinkStore` (`services.linker.store.BatchStore`). A batch touching several files reads and writes them
in parallel threads (one connection per file, each used by one thread at a
time): DuckDB releases the GIL, so the files' statements and commit syncs overlap instead of adding up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from integration.clerical import AppliedDecision, StickyDecision
from services.linker.changelog import CHUNK_RECORDS, ChangelogReader, restore
from services.linker.storage_errors import LinkStoreError, StorageFault
from services.linker.store import FamilyState, LinkStore, StoreUpdate

_FAMILY_KEY_LENGTH = 22
log = logging.getLogger("regsosek.linker.standby")
_A = TypeVar("_A")
_R = TypeVar("_R")


class PartitionedLinkStore:
    """Routes link-store reads and writes to one `LinkStore` per source partition."""

    def __init__(
        self,
        folder: Path,
        *,
        open_timeout_s: float = 60.0,
        changelog: ChangelogReader | None = None,
        chunk_records: int = CHUNK_RECORDS,
    ) -> None:
        self._folder = folder
        self._open_timeout_s = open_timeout_s
        # With a changelog, every file is brought up to its changelog partition's end when opened.
        self._changelog = changelog
        self._chunk_records = chunk_records
        self._stores: dict[int, LinkStore] = {}
        self._claimed: set[int] = set()  # partitions whose files this instance opens or holds as owner
        self._pool: ThreadPoolExecutor | None = None
        # Standby replicas (`standby`): files of partitions this instance does not own, kept current.
        self.standby = StandbyFiles(self, changelog, chunk_records) if changelog is not None else None
        #: Changelog records read when opening owned files, per partition (the last open's), for tests.
        self.restored: dict[int, int] = {}
        #: Told of every changelog read into a file: `("owner" | "standby", records)` (metrics).
        self.on_restored: Callable[[str, int], None] | None = None

    def path(self, partition: int) -> Path:
        """The DuckDB file of one partition."""
        return self._folder / f"links-p{partition}.duckdb"

    def batch(self, partitions: Mapping[str, int]) -> PartitionedBatch:
        """The view of one batch: `partitions` names each of its family keys' source partition."""
        return PartitionedBatch(self, dict(partitions))

    def _store(self, partition: int) -> LinkStore:
        store = self._stores.get(partition)
        if store is not None:
            return store
        self._claimed.add(partition)  # no standby replica of it is opened from now on (until released)
        if self.standby is not None:
            self.standby.take(partition)  # a running one stops and closes first
        deadline = time.monotonic() + self._open_timeout_s
        while True:
            try:
                store = LinkStore(self.path(partition))
                break
            except LinkStoreError as exc:
                # Another instance still holds it (a rebalance in progress); it closes on revocation.
                # A full or read-only disk does not heal by waiting: that stops the batch at once.
                if exc.fault is not StorageFault.LOCKED or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if self._changelog is not None:
            try:
                read = restore(store, partition, self._changelog, chunk_records=self._chunk_records)
                self.restored[partition] = read
                if self.on_restored is not None:
                    self.on_restored("owner", read)
            except BaseException:
                store.close()
                raise
        self._stores[partition] = store
        return store

    def each(self, parts: Mapping[int, _A], work: Callable[[LinkStore, _A], _R]) -> list[_R]:
        """`work(file, part)` for every partition's part, the files in parallel; every call finishes
        before the first failure is raised (no write is left running behind a crash)."""
        items = sorted(parts.items())
        stores = [self._store(partition) for partition, _ in items]  # opening may wait: one at a time
        if len(items) <= 1:
            return [work(store, part) for store, (_, part) in zip(stores, items, strict=True)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="link-store")
        futures = [self._pool.submit(work, store, part) for store, (_, part) in zip(stores, items, strict=True)]
        wait(futures)
        return [f.result() for f in futures]

    def linked_families(self, niks: Collection[str]) -> dict[str, frozenset[str]]:
        """Families whose present members are linked to any of `niks`, over the files this process has
        open (the partitions it owns): a family on another instance's partition is not seen."""
        out: dict[str, frozenset[str]] = {}
        if not niks:
            return out
        for part in self.each(dict.fromkeys(self._stores, None), lambda store, _: store.linked_families(niks)):
            out.update(part)
        return out

    def file(self, partition: int) -> LinkStore:
        """The open (or now opened) file of one partition this instance owns (master updates use it)."""
        return self._store(partition)

    def release(self, partitions: Iterable[int]) -> None:
        """Close the files of revoked partitions so their next owner can open them."""
        for partition in list(partitions):
            store = self._stores.pop(partition, None)
            if store is not None:
                store.close()
            self._claimed.discard(partition)

    def owns(self, partition: int) -> bool:
        """Whether this instance opens or holds the partition's file as its owner."""
        return partition in self._claimed

    def open_partitions(self) -> list[int]:
        """Partitions whose files this process holds open."""
        return sorted(self._stores)

    def counts(self) -> Mapping[str, int]:
        """Row counts over the open files."""
        total = {"families": 0, "minted_ids": 0}
        for store in self._stores.values():
            for name, n in store.counts().items():
                total[name] += n
        return total

    def close(self) -> None:
        """Close every open file (the standby replicas' too)."""
        if self.standby is not None:
            self.standby.close()
        self.release(list(self._stores))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class PartitionedBatch:
    """One batch's view of the partitioned store: each family is read and written in the file of the
    partition its record arrived on (a `services.linker.store.BatchStore`)."""

    def __init__(self, store: PartitionedLinkStore, partitions: dict[str, int]) -> None:
        self._store = store
        self._partitions = partitions

    def _partition_of(self, family_key: str) -> int:
        try:
            return self._partitions[family_key]
        except KeyError:
            raise KeyError(f"family key {family_key[:7]}... is not in this batch") from None

    def _by_partition(self, member_keys: Iterable[str]) -> dict[int, list[str]]:
        """Member keys (each starts with its family key) grouped by their family's partition."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for key in member_keys:
            by_partition[self._partition_of(key[:_FAMILY_KEY_LENGTH])].append(key)
        return by_partition

    def families(self, family_keys: Iterable[str]) -> dict[str, FamilyState]:
        """Stored state of the given families, each read from its partition's file."""
        out: dict[str, FamilyState] = {}
        for part in self._store.each(self._by_partition(family_keys), lambda store, keys: store.families(keys)):
            out.update(part)
        return out

    def minted_ids(self, member_keys: Iterable[str]) -> dict[str, str]:
        """Minted ids of the given member keys."""
        out: dict[str, str] = {}
        for part in self._store.each(self._by_partition(member_keys), lambda store, keys: store.minted_ids(keys)):
            out.update(part)
        return out

    def sticky_decisions(self, member_keys: Iterable[str]) -> dict[str, StickyDecision]:
        """Effective clerical decisions of the given members, each read from its partition's file."""
        out: dict[str, StickyDecision] = {}
        for part in self._store.each(self._by_partition(member_keys), lambda s, keys: s.sticky_decisions(keys)):
            out.update(part)
        return out

    def family_minted(self, family_keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Every id minted for the given families' members, each read from its partition's file."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for key in family_keys:
            by_partition[self._partition_of(key)].append(key)
        out: dict[str, dict[str, str]] = {}
        for part in self._store.each(by_partition, lambda store, keys: store.family_minted(keys)):
            out.update(part)
        return out

    def family_decisions(self, family_keys: Iterable[str]) -> dict[str, list[AppliedDecision]]:
        """Every clerical decision of the given families' members, each read from its partition's file."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for key in family_keys:
            by_partition[self._partition_of(key)].append(key)
        out: dict[str, list[AppliedDecision]] = {}
        for part in self._store.each(by_partition, lambda store, keys: store.family_decisions(keys)):
            out.update(part)
        return out

    def linked_families(self, niks: Collection[str]) -> dict[str, frozenset[str]]:
        """Families linked to any of `niks` over every file this process has open (not only the batch's)."""
        return self._store.linked_families(niks)

    def apply(self, update: StoreUpdate, positions: Mapping[int, int] | None = None) -> None:
        """Split the batch's update by partition and apply each part in its file's transaction."""
        self.writer(update, positions)()

    def writer(
        self, update: StoreUpdate, positions: Mapping[int, int] | None = None, *, skip: Collection[int] = ()
    ) -> Callable[[], None]:
        """`apply` in two steps: the split by partition now, the write when the returned function is
        called (possibly in a thread, while the next batch links). `positions` (changelog partition ->
        next offset) go to the file of the same partition number, with its part of the update. The parts
        of the partitions in `skip` are left out (their changelog write was fenced)."""
        parts: dict[int, StoreUpdate] = defaultdict(StoreUpdate)
        for key, state in update.families.items():
            parts[self._partition_of(key)].families[key] = state
        for key, person_id in update.minted.items():
            parts[self._partition_of(key[:_FAMILY_KEY_LENGTH])].minted[key] = person_id
        for key, member in update.members.items():
            parts[self._partition_of(key[:_FAMILY_KEY_LENGTH])].members[key] = member
        for key in update.dropped_members:
            parts[self._partition_of(key[:_FAMILY_KEY_LENGTH])].dropped_members.add(key)
        at = dict(positions or {})
        jobs = {
            p: (parts.get(p, StoreUpdate()), {p: at[p]} if p in at else None)
            for p in (set(parts) | set(at)) - set(skip)
        }
        store = self._store

        def write_one(file: LinkStore, job: tuple[StoreUpdate, dict[int, int] | None]) -> None:
            part, at_offset = job
            if at_offset is None:
                file.apply(part)
            else:
                file.apply(part, at_offset)

        def write() -> None:
            store.each(jobs, write_one)

        return write


def standby_partitions(owned: Collection[int], total: int, wanted: str) -> set[int]:
    """Which partitions an instance keeps standby replicas of: `wanted` is "all" (every partition it
    does not own), a number N (the N partitions that follow its own in partition order, wrapping
    around: instances owning neighbouring partitions then cover each other), or "0"/"" (none)."""
    others = [p for p in range(total) if p not in set(owned)]
    if wanted.strip().lower() == "all":
        return set(others)
    n = int(wanted or 0)
    if n <= 0 or not others:
        return set()
    start = max(owned) + 1 if owned else 0
    ring = sorted(others, key=lambda p: (p - start) % total)
    return set(ring[:n])


class StandbyFiles:
    """Standby replicas: the files of partitions this instance does not own, kept current by reading
    their changelog partitions in the background (`tail`), so that a takeover restores only the tail.

    One lock guards the replicas' files: `tail` holds it while it brings one partition's file forward
    (one chunk at a time, asking between chunks whether that partition is still wanted and not being
    taken). `want` never waits for it (it runs in a rebalance). `take(p)`, called
    before the instance opens `p` as its owner, asks a running tail of `p` to stop after its chunk,
    waits for the lock, and closes the replica: the owner then opens the file alone. A replica is never
    opened for a partition whose file the instance holds as owner, and a file another process holds
    (a shared `LINK_STORE_DIR`) is skipped.
    """

    def __init__(self, owner: PartitionedLinkStore, reader: ChangelogReader, chunk_records: int) -> None:
        self._owner = owner
        self._reader = reader
        self._chunk_records = chunk_records
        self._lock = threading.Lock()
        self._wanted: set[int] = set()
        self._files: dict[int, LinkStore] = {}
        self._taking: set[int] = set()
        self._halted = False
        #: Changelog records the replicas have read in all (for tests and logs).
        self.records_read = 0

    def want(self, partitions: Collection[int]) -> None:
        """The partitions to keep replicas of from now on; returns at once (a rebalance must not wait
        for a pass): a running pass of a partition no longer wanted stops after its chunk, and the next
        pass closes the replicas no longer wanted."""
        self._wanted = {p for p in partitions if not self._owner.owns(p)}

    def wanted(self) -> set[int]:
        """The partitions replicas are kept of."""
        return set(self._wanted)

    def position(self, partition: int) -> int | None:
        """The changelog offset a replica reflects (None: no replica open)."""
        with self._lock:
            file = self._files.get(partition)
            return None if file is None else file.changelog_position(partition)

    def take(self, partition: int) -> None:
        """The instance is about to open `partition` as its owner: stop and close its replica."""
        self._taking.add(partition)
        try:
            self._wanted = self._wanted - {partition}
            with self._lock:
                file = self._files.pop(partition, None)
                if file is not None:
                    file.close()
        finally:
            self._taking.discard(partition)

    def tail(self) -> int:
        """Bring every replica up to its changelog's end; returns the records read."""
        read = 0
        with self._lock:
            for p in sorted(set(self._files) - self._wanted):
                self._files.pop(p).close()
        for partition in sorted(self._wanted):
            if self._halted:
                break
            with self._lock:
                if partition not in self._wanted or self._owner.owns(partition):
                    continue
                file = self._files.get(partition)
                if file is None:
                    try:
                        file = LinkStore(self._owner.path(partition))
                    except LinkStoreError as exc:
                        if exc.fault is not StorageFault.LOCKED:
                            raise
                        continue  # another process holds it (a shared folder): no replica here
                    self._files[partition] = file
                n = restore(
                    file,
                    partition,
                    self._reader,
                    chunk_records=self._chunk_records,
                    stop=lambda p=partition: self._halted or p in self._taking or p not in self._wanted,  # type: ignore[misc]
                )
            read += n
            if n and self._owner.on_restored is not None:
                self._owner.on_restored("standby", n)
        self.records_read += read
        return read

    def halt(self) -> None:
        """The process stops: a running pass ends after its chunk, and no other starts."""
        self._halted = True

    def close(self) -> None:
        """Close every replica."""
        with self._lock:
            self._wanted = set()
            for file in self._files.values():
                file.close()
            self._files.clear()
