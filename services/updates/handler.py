"""One batch of change records end to end, in the linker process (wired by `services/linker/app.py`).

1. wait (bounded) until the submissions consumed so far are linked, so a change applies after the
   submissions that preceded it (and a replay from scratch gives the same events);
2. classify each record (bad ones -> dead letters), apply the valid changes (`ChangeApplier`, in a
   worker thread, holding the engine lock the submissions agent holds too);
3. produce every record and await every acknowledgement (acks=all);
4. journal the applied changes, then save the re-linked members' states in the link store;
5. return: faust acks the events and commits their offsets.

A crash before step 5 re-delivers the batch; the restarted engine has the journal's changes only, so
the re-delivered changes are applied again and yield the same records under the same keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from faust.types import EventT

from contracts.dead_letter import DeadLetter
from contracts.linkage_outputs import to_canonical_json
from services.linker.deadletter import SourcePosition
from services.linker.pipeline import OutboundRecord
from services.linker.store import LinkStore, StoreUpdate
from services.updates.applier import ChangeApplier, UpdateResult
from services.updates.changes import Change, ChangeTopicKind, classify_change
from services.updates.journal import MasterJournal
from services.updates.member_state import MemberState, Probe

log = logging.getLogger("regsosek.linker.updates")

#: Produce one record; the awaited result resolves when the broker acknowledged it (as the linker's).
Send = Callable[[str, bytes | None, bytes | None], Awaitable[Awaitable[Any]]]


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

    def save(self, states: Iterable[MemberState]) -> None:
        """Write re-linked members back to the file each came from."""
        parts: dict[int, dict[str, MemberState]] = defaultdict(dict)
        for s in states:
            parts[s.partition][s.member_key] = s
        files = self._files()
        for partition, members in sorted(parts.items()):
            files[partition].apply(StoreUpdate(members=members))


class ChangeHandler:
    """Handles one micro-batch of change records (steps 2-5 of the module docstring)."""

    def __init__(
        self,
        applier: ChangeApplier,
        index: StoreMemberIndex,
        journal: MasterJournal,
        kinds: Mapping[str, ChangeTopicKind],
        dlq_topic: str,
        *,
        max_payload_bytes: int,
    ) -> None:
        self._applier = applier
        self._index = index
        self._journal = journal
        self._kinds = dict(kinds)
        self._dlq = dlq_topic
        self._max_bytes = max_payload_bytes
        self._send: Send | None = None
        self.dead_letters: dict[str, int] = {}

    def bind_sender(self, send: Send) -> None:
        """How records are produced (the linker's sender: returns the broker-ack future)."""
        self._send = send

    def classify(self, events: Sequence[EventT[Any]]) -> tuple[list[Change], list[OutboundRecord]]:
        """Valid changes in arrival order, and the dead letters of the bad records."""
        changes: list[Change] = []
        dead: list[OutboundRecord] = []
        for event in events:
            msg = event.message
            source = SourcePosition(msg.topic, msg.partition, msg.offset, msg.timestamp)
            kind = self._kinds[msg.topic]
            result = classify_change(msg.value, msg.key, source, kind, max_bytes=self._max_bytes)
            if isinstance(result, DeadLetter):
                reason = result.reason.value
                self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1
                log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
                dead.append(OutboundRecord(self._dlq, msg.key, to_canonical_json(result)))
            else:
                changes.append(result)
        return changes, dead

    async def handle(self, events: Sequence[EventT[Any]]) -> UpdateResult:
        """Classify, apply, produce, await every ack, then journal and save (call under the engine lock)."""
        started = time.perf_counter()
        changes, records = self.classify(events)
        result = await asyncio.to_thread(self._applier.process, changes) if changes else UpdateResult()
        records.extend(result.records)
        if self._send is None:
            raise RuntimeError("the handler has no sender: call bind_sender() first")
        pending = [await self._send(r.topic, r.key, r.value) for r in records]
        if pending:
            await asyncio.gather(*pending)
        await asyncio.to_thread(self._journal.record, changes)
        await asyncio.to_thread(self._index.save, result.states.values())
        log.info(
            "changes: %d records, %d applied, %d members re-linked, %d update events, %d outputs in %.3f s",
            len(events), result.changes, result.relinked, result.events, len(records),
            time.perf_counter() - started,
        )  # fmt: skip
        return result
