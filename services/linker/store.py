"""The link store: the linker's own DuckDB file (revisions per family and minted person ids).

Only the linker process that owns the state directory opens it. It is written AFTER the outputs of a
batch are acknowledged by the broker, so a crash before that point simply re-processes the batch and
recomputes the same outputs (at-least-once delivery with idempotent outputs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from integration.clerical import AppliedDecision, StickyDecision
from services.linker import decision_store
from services.linker.member_state import SCHEMA as MEMBER_SCHEMA
from services.linker.member_state import MemberState, Probe, find_family_members, find_members, write_members
from services.linker.storage_errors import LinkStoreError, StorageFault, lock_holder, storage_fault

_SCHEMA = """
CREATE TABLE IF NOT EXISTS family_revisions (
    family_key    VARCHAR PRIMARY KEY,
    revision      BIGINT NOT NULL,
    submission_id VARCHAR NOT NULL,
    serials       INTEGER[] NOT NULL,
    owner         VARCHAR
);
-- files written before the owning team was kept: their families have no owner until one writes again
ALTER TABLE family_revisions ADD COLUMN IF NOT EXISTS owner VARCHAR;
-- field feedback items open after the family's revision (integration/feedback.py `OpenItem.encode`)
ALTER TABLE family_revisions ADD COLUMN IF NOT EXISTS open_feedback VARCHAR[];
CREATE TABLE IF NOT EXISTS minted_ids (
    member_key VARCHAR PRIMARY KEY,
    person_id  VARCHAR NOT NULL
);
-- Master updates: per change partition, the next change offset applied to this file's members.
CREATE TABLE IF NOT EXISTS change_positions (
    topic       VARCHAR NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
-- Clerical decisions: per decisions partition, the next decision offset this file's state reflects
-- (every decision before it of this file's members is applied: services/linker/updates/decision_wiring.py).
CREATE TABLE IF NOT EXISTS decision_positions (
    topic       VARCHAR NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
-- The link-state changelog (services/linker/changelog.py): per partition, the next changelog offset
-- this file reflects (a restore reads from there to the end).
CREATE TABLE IF NOT EXISTS changelog_positions (
    partition   INTEGER PRIMARY KEY,
    next_offset BIGINT NOT NULL
);
"""
# Files written while revisions were 32-bit INTEGER: these columns are widened once at open.
_REVISION_COLUMNS = (("family_revisions", "revision"), ("member_links", "revision"))
_FAMILY_KEY_LENGTH = 22  # a member key is <family key>-<serial>


def save_positions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    positions: Mapping[tuple[str, int], int] | None,
    *,
    forward_only: bool = False,
) -> None:
    """Upsert (topic, partition) -> next offset into `table` (the journal's or a link-store file's), in the
    caller's transaction; `forward_only`: a stored position never moves back."""
    if positions:
        new = "greatest(next_offset, excluded.next_offset)" if forward_only else "excluded.next_offset"
        con.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = {new}",
            [(t, p, o) for (t, p), o in sorted(positions.items())],
        )


@dataclass(frozen=True)
class FamilyState:
    """The highest revision of a family whose outputs were acknowledged, its member serials, and the
    team that owns it (wrote its first accepted revision; None when unknown, e.g. no gateway header),
    and the field feedback items open after that revision (encoded `integration.feedback.OpenItem`)."""

    revision: int
    submission_id: str
    serials: tuple[int, ...]
    owner: str | None = None
    open_feedback: tuple[str, ...] = ()


@dataclass
class StoreUpdate:
    """What a processed batch adds to the store (applied once its outputs are acknowledged)."""

    families: dict[str, FamilyState] = field(default_factory=dict)
    minted: dict[str, str] = field(default_factory=dict)
    # Per-member link state for master updates (services/linker/updates), and members a newer revision dropped.
    members: dict[str, MemberState] = field(default_factory=dict)
    dropped_members: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.families or self.minted or self.members or self.dropped_members)


class BatchStore(Protocol):
    """The link store as one micro-batch sees it: reads of the batch's families and members, and the
    write of its update. `LinkStore.batch` is the one-file view (the file itself); the partitioned
    store's view reads and writes each family in its source partition's file."""

    def families(self, family_keys: Iterable[str]) -> dict[str, FamilyState]: ...

    def minted_ids(self, member_keys: Iterable[str]) -> dict[str, str]: ...

    def sticky_decisions(self, member_keys: Iterable[str]) -> dict[str, StickyDecision]: ...

    def linked_families(self, niks: Collection[str]) -> dict[str, frozenset[str]]: ...

    def family_minted(self, family_keys: Iterable[str]) -> dict[str, dict[str, str]]: ...

    def family_decisions(self, family_keys: Iterable[str]) -> dict[str, list[AppliedDecision]]: ...

    def apply(self, update: StoreUpdate, positions: Mapping[int, int] | None = None) -> None: ...

    def writer(
        self, update: StoreUpdate, positions: Mapping[int, int] | None = None, *, skip: Collection[int] = ()
    ) -> Callable[[], None]:
        """`apply(update, positions)` as a function to call later (possibly in a thread, after the next
        batch began); `positions`: changelog partition -> next offset its records reached; the parts of
        the partitions in `skip` left out (their changelog write was fenced)."""
        ...


class LinkStoreLike(Protocol):
    """What the linker's handler needs of a link store (`LinkStore`, `PartitionedLinkStore`)."""

    def batch(self, partitions: Mapping[str, int]) -> BatchStore:
        """The view of one batch whose families (family key -> source partition) are `partitions`."""
        ...

    def release(self, partitions: Iterable[int]) -> None:
        """Source partitions revoked from this instance: close what holds their state."""
        ...


def _family_table(families: Sequence[tuple[str, FamilyState]]) -> pa.Table:
    return pa.table(
        {
            "family_key": [k for k, _ in families],
            "revision": pa.array([s.revision for _, s in families], pa.int64()),
            "submission_id": pa.array([s.submission_id for _, s in families], pa.string()),
            "serials": pa.array([list(s.serials) for _, s in families], pa.list_(pa.int32())),
            "owner": pa.array([s.owner for _, s in families], pa.string()),
            "open_feedback": pa.array([list(s.open_feedback) for _, s in families], pa.list_(pa.string())),
        }
    )


def _connect(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open (or create) a link-store file with its tables; a storage fault raises `LinkStoreError`.

    Named by its cause: only a lock held by another process is worth waiting for. A NEW file that could
    not be created whole (a full disk) is removed again: once space is freed, DuckDB would refuse the
    partial file as "not a valid DuckDB database file".
    """
    new = str(path) != ":memory:" and not Path(path).exists()
    con: duckdb.DuckDBPyConnection | None = None
    try:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        # One thread per file: the statements are small, and DuckDB's scheduling across threads cost
        # about 2.5 times their work on the shared 2-core machine. Several files of one batch are
        # written in parallel by `PartitionedLinkStore` instead.
        con.execute("SET threads = 1")
        con.execute(_SCHEMA)
        con.execute(MEMBER_SCHEMA)
        con.execute(decision_store.SCHEMA)
        _widen_to_bigint(con, _REVISION_COLUMNS)
        return con
    except (OSError, duckdb.Error) as exc:
        if con is not None:
            con.close()
        fault = storage_fault(exc)
        if fault is None:
            raise
        if new and fault is StorageFault.DISK_FULL:
            for leftover in (Path(path), Path(f"{path}.wal")):
                leftover.unlink(missing_ok=True)
        raise LinkStoreError(fault, path, "open", lock_holder(exc)) from exc


class LinkStore:
    """DuckDB-backed link store. Not shared between processes (DuckDB allows one writer per file)."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._con = _connect(path)
        # The revisions and minted ids in memory, read once at open: a lookup by key in DuckDB is a
        # scan of the table (a join on an unnested list does not use the primary-key index), so per
        # batch it grew with the file (about 30 ms per batch at 800,000 rows). This process is the
        # file's only user while it is open (DuckDB locks it), so the copy stays exact: `apply`
        # updates it after each commit. About 150 bytes per family and per minted id.
        rows = self._con.execute(
            "SELECT family_key, revision, submission_id, serials, owner, open_feedback FROM family_revisions"
        )
        self._families: dict[str, FamilyState] = {
            str(r[0]): FamilyState(int(r[1]), str(r[2]), tuple(int(s) for s in r[3]), r[4], tuple(r[5] or ()))
            for r in rows.fetchall()
        }
        minted = self._con.execute("SELECT member_key, person_id FROM minted_ids").fetchall()
        self._minted: dict[str, str] = {str(k): str(v) for k, v in minted}
        # The same ids by family (the changelog record of a family carries all of them).
        self._minted_by_family: dict[str, dict[str, str]] = {}
        for k, v in self._minted.items():
            self._minted_by_family.setdefault(k[:_FAMILY_KEY_LENGTH], {})[k] = v
        positions = self._con.execute("SELECT partition, next_offset FROM changelog_positions").fetchall()
        self._changelog: dict[int, int] = {int(p): int(o) for p, o in positions}
        self._decisions = decision_store.read_decisions(self._con)
        # The order decisions were applied in, over the whole file (a family's log keeps it).
        ordered = self._con.execute("SELECT decision_id FROM review_decisions ORDER BY applied_no").fetchall()
        self._applied_order: dict[str, int] = {str(r[0]): n for n, r in enumerate(ordered)}
        self._decided_members: dict[str, set[str]] = {}  # family key -> its members with decisions
        for member_key in self._decisions:
            self._decided_members.setdefault(member_key[:_FAMILY_KEY_LENGTH], set()).add(member_key)

    def batch(self, partitions: Mapping[str, int]) -> LinkStore:
        """One file holds every partition's families: the batch's view is the file itself."""
        return self

    def release(self, partitions: Iterable[int]) -> None:
        """One file for every partition: nothing moves on a revocation (it is closed by `close`)."""

    def writer(
        self, update: StoreUpdate, positions: Mapping[int, int] | None = None, *, skip: Collection[int] = ()
    ) -> Callable[[], None]:
        """`apply(update, positions)`, called later (one file holds every partition: none can be skipped)."""
        if skip:
            raise ValueError("a single link-store file cannot leave partitions out")
        return lambda: self.apply(update, positions)

    def family_minted(self, family_keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Every id minted for the given families' members: family key -> member key -> person id."""
        known = self._minted_by_family
        return {k: dict(known[k]) for k in set(family_keys) if k in known}

    def family_decisions(self, family_keys: Iterable[str]) -> dict[str, list[AppliedDecision]]:
        """Every clerical decision applied to the given families' members, in the order applied (the
        families without any are left out)."""
        out: dict[str, list[AppliedDecision]] = {}
        for key in set(family_keys):
            members = self._decided_members.get(key)
            if members:
                entries = [e for m in members for e in self._decisions.get(m, ())]
                out[key] = sorted(entries, key=lambda e: self._applied_order[e.decision_id])
        return out

    def changelog_position(self, partition: int) -> int:
        """The next offset of the partition's changelog this file reflects (0: none)."""
        return self._changelog.get(partition, 0)

    def families(self, family_keys: Iterable[str]) -> dict[str, FamilyState]:
        """The stored state of the given families (absent keys were never processed)."""
        known = self._families
        return {k: known[k] for k in sorted(set(family_keys)) if k in known}

    def minted_ids(self, member_keys: Iterable[str]) -> dict[str, str]:
        """Person ids minted earlier for the given member keys."""
        known = self._minted
        return {k: known[k] for k in set(member_keys) if k in known}

    def replace_families(
        self,
        update: StoreUpdate,
        positions: Mapping[int, int],
        *,
        decisions: Sequence[AppliedDecision] = (),
        change_positions: Mapping[tuple[str, int], int] | None = None,
        decision_positions: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Families restored from the changelog: their state, ids and members replace what the file holds
        of them (members the file has that the records do not are removed), their decisions are added
        (those the file lacks, in order), the change positions (master updates) set and the decision
        positions moved forward, with the changelog positions they reflect, in one transaction."""
        keys = sorted(update.families)
        held = set()
        if keys:
            rows = self._con.execute(
                "SELECT member_key FROM member_links WHERE family_key IN (SELECT unnest(?))", [keys]
            ).fetchall()
            held = {str(r[0]) for r in rows}
        gone = held - set(update.members)
        restored = StoreUpdate(update.families, update.minted, update.members, gone | set(update.dropped_members))
        self.apply(
            restored,
            positions,
            decisions=decisions,
            change_positions=change_positions,
            decision_positions=decision_positions,
        )

    def apply(
        self,
        update: StoreUpdate,
        positions: Mapping[int, int] | None = None,
        *,
        decisions: Sequence[AppliedDecision] = (),
        change_positions: Mapping[tuple[str, int], int] | None = None,
        decision_positions: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Record a batch in one transaction; a revision never goes backwards, a minted id never changes.

        `positions`: the changelog offsets (partition -> next offset) the batch's changelog records reached;
        `decisions`: clerical decisions to add (an id held already is kept once); `change_positions`:
        which master changes the file's members now reflect (set); `decision_positions`: which review
        decisions the file's state reflects (each position only moves forward).
        """
        if not update and not positions and not decisions and not change_positions and not decision_positions:
            return
        # Set-based statements (row-by-row upserts cost about 1 ms each in DuckDB). The in-memory copy
        # says which rows exist, so new families and ids are plain appends: an upsert (ON CONFLICT)
        # cost about 18 ms per 100 rows against 800,000, an append about 1 ms.
        held = self._families
        changed = sorted((k, s) for k, s in update.families.items() if k not in held or s.revision >= held[k].revision)
        new_families = _family_table([(k, s) for k, s in changed if k not in held])
        newer_families = _family_table([(k, s) for k, s in changed if k in held])
        # Ids this file holds already are never replaced: only the new ones are written.
        minted = sorted((k, v) for k, v in update.minted.items() if k not in self._minted)
        minted_batch = pa.table({"member_key": [k for k, _ in minted], "person_id": [v for _, v in minted]})
        # Only members of families this file already holds can have a row to replace.
        existing = [k for k, m in update.members.items() if m.family_key in held]
        self._con.execute("BEGIN TRANSACTION")
        try:
            self._con.register("new_families", new_families)
            self._con.register("newer_families", newer_families)
            self._con.register("minted_batch", minted_batch)
            if new_families.num_rows:
                self._con.execute(
                    "INSERT INTO family_revisions (family_key, revision, submission_id, serials, owner, open_feedback) "
                    "SELECT family_key, revision, submission_id, serials, owner, open_feedback FROM new_families"
                )
            if newer_families.num_rows:
                self._con.execute(
                    "UPDATE family_revisions SET revision = n.revision, submission_id = n.submission_id, "
                    "serials = n.serials, owner = n.owner, open_feedback = n.open_feedback "
                    "FROM newer_families n WHERE family_revisions.family_key = n.family_key"
                )
            if minted:
                self._con.execute("INSERT INTO minted_ids SELECT * FROM minted_batch")
            write_members(self._con, update.members, update.dropped_members, existing=existing)
            if decisions:
                decision_store.insert_decisions(self._con, decisions)
            save_positions(self._con, "change_positions", change_positions)
            save_positions(self._con, "decision_positions", decision_positions, forward_only=True)
            self._save_changelog(positions)
            self._con.execute("COMMIT")
        except Exception as exc:
            self._failed("write", exc)
            raise
        finally:
            for name in ("new_families", "newer_families", "minted_batch"):
                self._con.unregister(name)
        held.update(changed)
        self._minted.update(minted)
        for k, v in minted:
            self._minted_by_family.setdefault(k[:_FAMILY_KEY_LENGTH], {})[k] = v
        self._changelog_saved(positions)
        self._held_decisions(decisions)

    def _held_decisions(self, entries: Iterable[AppliedDecision]) -> None:
        """The in-memory copy after decisions were committed (in the order applied; an id once)."""
        for e in entries:
            if e.decision_id in self._applied_order:
                continue
            self._applied_order[e.decision_id] = len(self._applied_order)
            self._decisions.setdefault(e.member_key, []).append(e)  # the last one names the current task
            self._decided_members.setdefault(e.member_key[:_FAMILY_KEY_LENGTH], set()).add(e.member_key)

    def _failed(self, action: str, exc: Exception) -> None:
        """Roll back a failed transaction; raise `LinkStoreError` if the cause is the storage.

        A failed COMMIT (a full disk) has already ended the transaction, and the ROLLBACK's own
        error ("no transaction is active") used to replace the cause: it is ignored here.
        """
        with contextlib.suppress(duckdb.Error):
            self._con.execute("ROLLBACK")
        fault = storage_fault(exc)
        if fault is not None:
            raise LinkStoreError(fault, self._path, action) from exc

    def sticky_decisions(self, member_keys: Iterable[str]) -> dict[str, StickyDecision]:
        """The effective clerical decisions of the given members (those that have one)."""
        return decision_store.sticky_decisions(self._decisions, member_keys)

    def linked_families(self, niks: Collection[str]) -> dict[str, frozenset[str]]:
        """Families whose present members are linked to any of `niks`: family key -> those NIKs.

        One scan of `member_links` (no index on the NIK): a few milliseconds per 100,000 members,
        once per batch (the duplicate-family feedback rule, integration/feedback.py).
        """
        if not niks:
            return {}
        rows = self._con.execute(
            "SELECT family_key, list_sort(list(DISTINCT link_nik)) FROM member_links "
            "WHERE decision = 'linked' AND present AND link_nik IN (SELECT unnest(?)) GROUP BY family_key",
            [sorted(niks)],
        ).fetchall()
        return {str(k): frozenset(str(n) for n in v) for k, v in rows}

    def decisions_of(self, member_key: str) -> list[AppliedDecision]:
        """Every decision applied to a member, in the order applied."""
        return list(self._decisions.get(member_key, []))

    def apply_decisions(
        self,
        entries: Sequence[AppliedDecision],
        members: Mapping[str, MemberState],
        positions: Mapping[int, int] | None = None,
        decision_positions: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Applied decisions and the member states they produced, with the changelog offsets their
        state records reached (partition -> next offset) and the decisions topic's positions the file
        now reflects (each only moves forward), in one transaction."""
        self._con.execute("BEGIN TRANSACTION")
        try:
            decision_store.insert_decisions(self._con, entries)
            write_members(self._con, members)
            save_positions(self._con, "decision_positions", decision_positions, forward_only=True)
            self._save_changelog(positions)
            self._con.execute("COMMIT")
        except Exception as exc:
            self._failed("write", exc)
            raise
        self._held_decisions(entries)
        self._changelog_saved(positions)

    def _save_changelog(self, positions: Mapping[int, int] | None) -> None:
        if positions:
            self._con.executemany(
                "INSERT INTO changelog_positions VALUES (?, ?) ON CONFLICT (partition) "
                "DO UPDATE SET next_offset = greatest(next_offset, excluded.next_offset)",
                sorted(positions.items()),
            )

    def _changelog_saved(self, positions: Mapping[int, int] | None) -> None:
        for p, o in (positions or {}).items():
            self._changelog[p] = max(o, self._changelog.get(p, 0))

    def find_members(self, probe: Probe, partition: int = 0) -> list[MemberState]:
        """Members a changed master record may affect (services/linker/member_state.py)."""
        return find_members(self._con, probe, partition)

    def find_family_members(self, family_keys: Iterable[str], partition: int = 0) -> list[MemberState]:
        """Every stored member of the given families (services/linker/updates rebuilds their family records)."""
        return find_family_members(self._con, family_keys, partition)

    def change_positions(self) -> dict[tuple[str, int], int]:
        """Which change records were applied to this file's members: (topic, partition) -> next offset."""
        rows = self._con.execute("SELECT topic, partition, next_offset FROM change_positions").fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def decision_positions(self) -> dict[tuple[str, int], int]:
        """Which review decisions this file's state reflects: (topic, partition) -> next offset (every
        decision before it of this file's members is applied; a missing partition: none)."""
        rows = self._con.execute("SELECT topic, partition, next_offset FROM decision_positions").fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def apply_changes(
        self,
        members: Mapping[str, MemberState],
        positions: Mapping[tuple[str, int], int],
        changelog: Mapping[int, int] | None = None,
    ) -> None:
        """Re-linked members and the change positions they reflect, with the changelog offsets their
        state records reached (partition -> next offset), in one transaction (services/linker/updates)."""
        self._con.execute("BEGIN TRANSACTION")
        try:
            write_members(self._con, members)
            save_positions(self._con, "change_positions", positions)
            self._save_changelog(changelog)
            self._con.execute("COMMIT")
        except Exception as exc:
            self._failed("write", exc)
            raise
        self._changelog_saved(changelog)

    def counts(self) -> Mapping[str, int]:
        """Row counts, for status output and tests."""
        fam = self._con.execute("SELECT count(*) FROM family_revisions").fetchone()
        ids = self._con.execute("SELECT count(*) FROM minted_ids").fetchone()
        return {"families": int(fam[0]) if fam else 0, "minted_ids": int(ids[0]) if ids else 0}

    def close(self) -> None:
        """Close the DuckDB connection (the file stays)."""
        self._con.close()


def _widen_to_bigint(con: duckdb.DuckDBPyConnection, columns: Iterable[tuple[str, str]]) -> None:
    """Make columns 64-bit in a file created while they were INTEGER (32-bit), keeping their rows."""
    for table, column in columns:
        row = con.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
            [table, column],
        ).fetchone()
        if row is not None and str(row[0]).upper() != "BIGINT":
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET DATA TYPE BIGINT")
