"""One batch of change records end to end, in the linker process (wired by `services/linker/updates/wiring.py`).

Every linker instance reads every change record (`reader.py`) and applies it to its own engine. The
members it re-links are those of the link-store files it owns (one per submissions partition); each
file records which change positions its members reflect (`LinkStore.change_positions`). Per batch,
holding the engine lock the submissions agent holds too:

1. sync the owned files (`sync`): a file BEHIND the engine is caught up from the journal (its members
   re-linked for the journalled changes it never saw, outputs produced and acknowledged, states and
   positions saved); a file AHEAD of the engine (its previous owner had read further) is left out
   until this instance's reader has passed its positions;
2. classify each record (bad ones -> dead letters), apply the valid changes to the engine and re-link
   the affected members of the in-sync files (`ChangeApplier`, in a worker thread);
3. produce every record and await every acknowledgement (acks=all);
4. journal the applied changes with the reader's new positions (one transaction); with the link-state
   changelog, send the re-linked families' new states, await their acks, then each in-sync file's
   change positions record, await those (services/linker/changelog.py); then save each in-sync file's
   re-linked members with the same positions and the changelog offsets (one transaction per file);
5. return: the reader moves on (its positions are the journal's).

A crash before 4 re-reads the batch from the journal's positions; a crash between the journal and a
file leaves that file behind, and step 1 catches it up after the restart. Outputs are deterministic,
so re-processing publishes the same records under the same keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from contracts.dead_letter import DeadLetter
from contracts.linkage_outputs import to_canonical_json
from integration.clerical import StickyDecision
from integration.ids import PersonIds
from integration.master import MasterPerson, SectoralSource
from integration.port import MemberLink, MemberQuery
from services.kafka.record import KafkaRecord
from services.linker.changelog import ChangelogSink, ChangelogWrite, FamilyRecord, file_records
from services.linker.deadletter import dead_letter_key
from services.linker.member_state import MemberState, Probe
from services.linker.pipeline import OutboundRecord, Send
from services.linker.store import LinkStore, StoreUpdate
from services.linker.updates.applier import ChangeApplier, LinkingMaster, UpdateResult, UpdateTopics
from services.linker.updates.changes import ChangeTopicKind, classify_change
from services.linker.updates.journal import JournalEntry, MasterJournal
from services.linker.updates.positions import FileStatus, Positions, advanced, file_status

log = logging.getLogger("regsosek.linker.updates")


class ChangeRecorder(Protocol):
    """Told of each finished batch (metrics: `services.observability.recorder.BatchRecorder`)."""

    def changes_done(self, consumed: Sequence[KafkaRecord], produced: Sequence[OutboundRecord]) -> None:
        """The change records read and the records produced (all acknowledged) by one batch or catch-up."""


class StoreMemberIndex:
    """Member states over the link-store files of the submissions partitions this instance owns."""

    def __init__(self, files: Callable[[], Mapping[int, LinkStore]]) -> None:
        self._files = files

    def find(self, probe: Probe) -> list[MemberState]:
        """Candidates from every owned file, by member key."""
        found = [s for p, f in sorted(self._files().items()) for s in f.find_members(probe, p)]
        return sorted(found, key=lambda s: s.member_key)

    def find_families(self, family_keys: Iterable[str]) -> list[MemberState]:
        """Every stored member of the given families, from every owned file."""
        keys = sorted(set(family_keys))
        found = [s for p, f in sorted(self._files().items()) for s in f.find_family_members(keys, p)]
        return sorted(found, key=lambda s: s.member_key)

    def sticky_decisions(self, member_keys: Iterable[str]) -> dict[str, StickyDecision]:
        """The effective clerical decisions of the given members, from every owned file."""
        keys = list(member_keys)
        out: dict[str, StickyDecision] = {}
        for _, f in sorted(self._files().items()):
            out.update(f.sticky_decisions(keys))
        return out

    def save(self, states: Iterable[MemberState]) -> None:
        """Write re-linked members back to the file each came from."""
        files = self._files()
        for partition, members in sorted(by_partition(states).items()):
            files[partition].apply(StoreUpdate(members=members))


def by_partition(states: Iterable[MemberState]) -> dict[int, dict[str, MemberState]]:
    """Member states grouped by the link-store file (partition) they live in."""
    parts: dict[int, dict[str, MemberState]] = defaultdict(dict)
    for s in states:
        parts[s.partition][s.member_key] = s
    return parts


class RelinkOnly:
    """The engine for catching a file up: re-links against the master as it is, writes nothing (the
    journalled changes are in the master already)."""

    def __init__(self, master: LinkingMaster) -> None:
        self._master = master

    @property
    def model_version(self) -> str:
        return self._master.model_version

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        return self._master.link(members)

    def upsert_master(self, person: MasterPerson) -> None:
        """Already in the master."""

    def set_sectoral(self, source: SectoralSource, nik: str, sectoral_id: str, decile: int | None = None) -> None:
        """Already in the master."""

    def __getattr__(self, name: str) -> Any:  # anything else the applier may ask of the engine
        return getattr(self._master, name)


class ChangeHandler:
    """Handles one micro-batch of change records (steps 1-5 of the module docstring)."""

    def __init__(
        self,
        master: LinkingMaster,
        files: Callable[[], Mapping[int, LinkStore]],
        ids: PersonIds,
        topics: UpdateTopics,
        journal: MasterJournal,
        kinds: Mapping[str, ChangeTopicKind],
        dlq_topic: str,
        *,
        max_payload_bytes: int,
        recorder: ChangeRecorder | None = None,
        changelog: ChangelogSink | None = None,
    ) -> None:
        self._master = master
        self._changelog = changelog  # the link-state changelog: re-linked families and file positions
        self._recorder = recorder
        self._files = files
        self._ids = ids
        self._topics = topics
        self._journal = journal
        self._kinds = dict(kinds)
        self._dlq = dlq_topic
        self._max_bytes = max_payload_bytes
        self._send: Send | None = None
        self.engine_positions: dict[tuple[str, int], int] = journal.positions()
        self._file_positions: dict[int, dict[tuple[str, int], int]] = {}  # of the open files, cached
        self.blocked: set[int] = set()  # owned files ahead of this engine (their submissions wait)
        self.dead_letters: dict[str, int] = {}

    def bind_sender(self, send: Send) -> None:
        """How records are produced (the linker's sender: returns the broker-ack future)."""
        self._send = send

    # --- which files are ready ------------------------------------------------------------------

    def status(self, partition: int) -> FileStatus | None:
        """A file's status from the cache (None: not read since this instance acquired it)."""
        known = self._file_positions.get(partition)
        return None if known is None else file_status(known, self.engine_positions)

    def ready(self, partitions: Iterable[int]) -> bool:
        """True when every given file is known to be in sync with the engine (no I/O)."""
        return all(self.status(p) is FileStatus.IN_SYNC for p in partitions)

    def forget(self, partitions: Iterable[int]) -> None:
        """Files released (partition revoked): their positions are re-read when acquired again."""
        for p in partitions:
            self._file_positions.pop(p, None)
            self.blocked.discard(p)

    async def sync(self, partitions: Collection[int] | None = None) -> set[int]:
        """Catch up the owned files behind the engine (all, or the given ones); returns those AHEAD
        of it. Call under the engine lock."""
        files = await asyncio.to_thread(self._files)  # may open files (and wait for a previous owner)
        ahead: set[int] = set()
        for p, file in sorted(files.items()):
            if partitions is not None and p not in partitions:
                continue
            if p not in self._file_positions:
                self._file_positions[p] = await asyncio.to_thread(file.change_positions)
            match self.status(p):
                case FileStatus.BEHIND:
                    await self._catch_up(p, file)
                case FileStatus.AHEAD:
                    ahead.add(p)
        if partitions is None:
            self.blocked = ahead
        else:
            self.blocked = (self.blocked - set(partitions)) | ahead
        return ahead

    async def _catch_up(self, partition: int, file: LinkStore) -> None:
        started = time.perf_counter()
        target = dict(self.engine_positions)
        entries = await asyncio.to_thread(self._journal.unseen_by, self._file_positions[partition])
        applier = ChangeApplier(
            RelinkOnly(self._master), StoreMemberIndex(lambda: {partition: file}), self._ids, self._topics
        )
        changes = [e.change for e in entries]
        result = await asyncio.to_thread(applier.process, changes) if changes else UpdateResult()
        await self._produce_and_wait(result.records)
        relinked = by_partition(result.states.values()).get(partition, {})
        logged = await self._log_states({partition: file}, {partition: relinked}, target)
        if partition in logged.fenced:  # another instance owns it now (the app released it)
            return
        await asyncio.to_thread(file.apply_changes, relinked, target, logged.after or None)
        self._file_positions[partition] = target
        if self._recorder is not None:
            self._recorder.changes_done((), result.records)
        log.info(
            "master updates: link-store file p%d caught up with this instance's master: %d journalled changes, "
            "%d members re-linked, %d update events, %d outputs in %.3f s",
            partition,
            len(changes),
            result.relinked,
            result.events,
            len(result.records),
            time.perf_counter() - started,
        )

    # --- a batch of change records ---------------------------------------------------------------

    def classify(self, records: Sequence[KafkaRecord]) -> tuple[list[JournalEntry], list[OutboundRecord]]:
        """Valid changes in arrival order (with their positions), and the dead letters of the bad records.

        Every instance reads every record, so each dead-letters a bad one: the dead letter is a pure
        function of the record (its time is the record's broker timestamp), so the copies have the
        same key and the same bytes.
        """
        changes: list[JournalEntry] = []
        dead: list[OutboundRecord] = []
        for msg in records:
            kind = self._kinds[msg.topic]
            result = classify_change(msg.value, msg.key, msg, kind, max_bytes=self._max_bytes)
            if isinstance(result, DeadLetter):
                reason = result.reason.value
                self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1
                log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
                dead.append(
                    OutboundRecord(
                        self._dlq, dead_letter_key(msg.key), to_canonical_json(result), result.dead_lettered_at
                    )
                )
            else:
                changes.append(JournalEntry(result, (msg.topic, msg.partition, msg.offset)))
        return changes, dead

    async def handle(self, records: Sequence[KafkaRecord]) -> UpdateResult:
        """Sync the files, classify, apply, produce, await every ack, then journal and save (call under
        the engine lock)."""
        started = time.perf_counter()
        await self.sync()
        files = await asyncio.to_thread(self._files)
        in_sync = {p: f for p, f in files.items() if self.status(p) is FileStatus.IN_SYNC}
        entries, out = self.classify(records)
        target = advanced(self.engine_positions, records)
        applier = ChangeApplier(self._master, StoreMemberIndex(lambda: in_sync), self._ids, self._topics)
        changes = [e.change for e in entries]
        result = await asyncio.to_thread(applier.process, changes) if changes else UpdateResult()
        out.extend(result.records)
        await self._produce_and_wait(out)
        await asyncio.to_thread(self._journal.record, entries, target)
        self.engine_positions = target
        parts = by_partition(result.states.values())
        logged = await self._log_states(in_sync, parts, target)
        # A partition fenced on the changelog is another instance's now (the app released its file).
        kept = {p: f for p, f in in_sync.items() if p not in logged.fenced}
        await asyncio.to_thread(self._save, kept, parts, target, logged.after)
        if self._recorder is not None:
            self._recorder.changes_done(records, out)
        log.info(
            "changes: %d records, %d applied, %d members re-linked in %d files, %d update events, %d outputs in %.3f s",
            len(records),
            result.changes,
            result.relinked,
            len(in_sync),
            result.events,
            len(out),
            time.perf_counter() - started,
        )
        return result

    async def _log_states(
        self, files: Mapping[int, LinkStore], parts: Mapping[int, Mapping[str, MemberState]], target: Positions
    ) -> ChangelogWrite:
        """With the changelog: the re-linked families' new states, then each file's change positions
        `target`, on the files' changelog partitions, committed; returns the changelog offsets reached
        (partition -> next offset) and the partitions fenced."""
        if self._changelog is None or not files:
            return ChangelogWrite({})

        def records() -> dict[int, list[FamilyRecord]]:
            return {
                p: file_records(file, p, {s.family_key for s in parts[p].values()}, parts[p])
                for p, file in sorted(files.items())
                if parts.get(p)
            }

        families = await asyncio.to_thread(records)
        return await self._changelog.write(families, {p: target for p in files})

    def _save(
        self,
        files: Mapping[int, LinkStore],
        parts: Mapping[int, Mapping[str, MemberState]],
        target: Positions,
        logged: Mapping[int, int],
    ) -> None:
        for p, file in sorted(files.items()):
            file.apply_changes(parts.get(p, {}), target, {p: logged[p]} if p in logged else None)
            self._file_positions[p] = dict(target)

    async def _produce_and_wait(self, records: Sequence[OutboundRecord]) -> None:
        if self._send is None:
            raise RuntimeError("the handler has no sender: call bind_sender() first")
        pending = [await self._send(r) for r in records]
        if pending:
            await asyncio.gather(*pending)
