"""The link store's changelog: each family's state as a record on a compacted Kafka topic.

The per-partition DuckDB files (services/linker/partitioned_store.py) are a cache of this log. Every
write that changes a family's state sends one record per family it changed (key: the family key;
value: the family's whole state after the write, `encode`) to the changelog partition numbered like
the submissions partition the family arrived on, and awaits the acknowledgements before the file is
written and before its own offsets or positions are committed. Three writers do so:

- a submissions batch (services/linker/app.py), together with the batch's outputs;
- a batch of clerical review decisions, or the re-read of a file's missed decisions (services/linker/
  updates/decision_wiring.py): the families of the members it decided, their new member states and
  decision logs, and then one `DecisionPositionsRecord` per file (key `DECISION_POSITIONS_KEY`) with the
  decisions topic's positions the file now reflects;
- a batch of master changes, or the catch-up of a file from the journal (services/linker/updates/
  handler.py): the families of the members it re-linked, and then one `PositionsRecord` per file
  (key `POSITIONS_KEY`) with the change positions the file's members now reflect.

The file keeps the next changelog offset it reflects (`changelog_positions`). When a partition's file
is opened (after an assignment, or the first time), `restore` reads that changelog partition from the
file's offset to its end, in chunks of at most `chunk_records` records, and applies the latest record
of each family (and the latest positions record): an instance with an empty disk rebuilds the state of
a partition it takes over, and one whose file is behind (the partition was owned elsewhere in the
meantime) catches up. With a shared folder the file is current and the read finds nothing.

A family record holds what the file holds of the family: its revision state (revision, submission id,
serials, owner, open feedback), every person id minted for its members (those of members a later
revision dropped too: a member that comes back keeps its id), the link state of its current members
(`member_state.MemberState`, for master updates) and every clerical decision applied to its members
(in the order applied; the last task's decisions are a member's sticky human decision). The value is
canonical JSON (sorted keys, no spaces), so a re-processed batch writes byte-identical records.

Why the change positions are on the changelog but the journal is not. A file's change positions say
which master changes its members' link states reflect; they belong to the partition's state: without
them a new owner would take a restored file for one that saw no change at all (and re-link it for
every journalled change), or, worse, not see that the file is AHEAD of its own master and link the
partition's submissions against an older master. The per-instance journal
(`<state_dir>/master-updates.duckdb`: the changes applied to this instance's engine and its reader's
positions) is not partition state: every instance reads every change record itself, and an instance
with an empty disk rebuilds its journal by reading the change topics from the start (they are not
deleted before 30 days, `contracts/topics.py`); until its reader has passed a restored file's
positions, that file's submissions wait (the AHEAD gate). What such an instance cannot rebuild is a
change older than the change topics' retention that its master files (loaded at start-up) do not
hold yet: the master files must be refreshed more often than that retention (docs/linker.md "State
in Kafka"); a master of its own on Kafka is issue 12 section 2, not this log's job.

Why the decision positions are on the changelog too. Every instance reads every review decision and
skips those of members it does not hold; a decision skipped by one instance and not applied by the
file's owner (which died first) is missing from the changelog. A new owner compares the restored
file's decision positions with its own decisions reader's and re-reads the decisions in between
for that file (services/linker/updates/decision_wiring.py `DecisionHandler.catch_up`).

Versions: layout 2 added the decisions and the positions record; layout 4 the decision-positions
record (layout 3 shares each family's output record). Layouts 1 (no decisions) to 3 are still read; a
linker that reads only up to 3 refuses a layout 4 record with a clear error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.review_decisions import ReviewOutcome
from integration.clerical import AppliedDecision
from integration.port import MemberQuery
from services.linker.member_state import MemberState
from services.linker.pipeline import OutboundRecord, Send
from services.linker.store import FamilyState, LinkStore, StoreUpdate

log = logging.getLogger("regsosek.linker.changelog")

#: Version of the record's layout written (a field of every value). Layout 3 holds each distinct family
#: output record once per family (`family_jsons`; a member names its own by index): layout 2 repeated
#: it in every member, about 40% of a 4-member family's record.
#: Layout 4 adds the decision-positions record (`DECISION_POSITIONS_KEY`); family records are as in 3.
VERSION = 4
#: The layouts this linker reads; a reader refuses others (written by a newer linker).
READABLE = frozenset({1, 2, 3, 4})
#: The key of a partition's change-positions record (a family key is 22 digits: no clash).
POSITIONS_KEY = "~change-positions"
#: The key of a partition's decision-positions record (its own key: compaction keeps the latest of each).
DECISION_POSITIONS_KEY = "~decision-positions"
#: At most this many records are held in memory (and applied in one transaction) while restoring.
CHUNK_RECORDS = 5_000
_FAMILY_KEY_LENGTH = 22

#: (topic, partition) -> next offset: which master changes a file's members reflect.
ChangePositions = Mapping[tuple[str, int], int]
#: (topic, partition) -> next offset: which review decisions a file's state reflects.
DecisionPositions = Mapping[tuple[str, int], int]


class ChangelogVersionError(ValueError):
    """A changelog record of a layout this code does not know (written by a newer linker)."""


@dataclass(frozen=True)
class FamilyRecord:
    """One family's state in the link store: the value of its changelog record."""

    family_key: str
    state: FamilyState
    minted: Mapping[str, str]  # member key -> person id, every id minted for the family
    members: tuple[MemberState, ...]  # the current members' link states, by member key
    decisions: tuple[AppliedDecision, ...] = ()  # clerical decisions of its members, in the order applied


@dataclass(frozen=True)
class PositionsRecord:
    """A partition's change positions (key `POSITIONS_KEY`): the master changes its members reflect."""

    change_positions: ChangePositions


@dataclass(frozen=True)
class DecisionPositionsRecord:
    """A partition's decision positions (key `DECISION_POSITIONS_KEY`): the review decisions its state
    reflects (every decision before them of its members is applied)."""

    decision_positions: DecisionPositions


def _query(q: MemberQuery) -> dict[str, Any]:
    return {
        "record_id": q.record_id,
        "nik": q.nik,
        "kk_number": q.kk_number,
        "full_name": q.full_name,
        "sex": q.sex,
        "birth_date": q.birth_date,
        "birth_year": q.birth_year,
        "age": q.age,
        "reference_year": q.reference_year,
        "village_code": q.village_code,
        "address": q.address,
        "family_key": q.family_key,
        "head_name": q.head_name,
        "relationship": q.relationship,
        "submission_id": q.submission_id,
    }


def _member(m: MemberState, family_json: int) -> dict[str, Any]:
    return {
        "member_key": m.member_key,
        "family_key": m.family_key,
        "revision": m.revision,
        "decision": m.decision,
        "link_nik": m.link_nik,
        "query": _query(m.query),
        "member_json": m.member_json.decode("utf-8"),
        "family_json": family_json,  # index into the record's `family_jsons`
        "master_kk": m.master_kk,
        "master_dead": m.master_dead,
        "present": m.present,
        "blocking_keys": None if m.blocking_keys is None else list(m.blocking_keys),
    }


def _decision(d: AppliedDecision) -> dict[str, Any]:
    return {
        "decision_id": d.decision_id,
        "task_id": d.task_id,
        "member_key": d.member_key,
        "sequence": d.sequence,
        "outcome": d.outcome.value,
        "chosen_nik": d.chosen_nik,
        "probability": d.probability,
        "match_weight": d.match_weight,
        "identity": d.identity,
        "revokes": d.revokes,
        "reviewer_id": d.reviewer_id,
        "held": d.held,
    }


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(record: FamilyRecord) -> bytes:
    """The record's value: canonical JSON (the same state always gives the same bytes)."""
    s = record.state
    members = sorted(record.members, key=lambda m: m.member_key)
    family_jsons: dict[bytes, int] = {}
    for m in members:
        family_jsons.setdefault(m.family_json, len(family_jsons))
    doc = {
        "v": VERSION,
        "family_key": record.family_key,
        "revision": s.revision,
        "submission_id": s.submission_id,
        "serials": list(s.serials),
        "owner": s.owner,
        "open_feedback": list(s.open_feedback),
        "minted": dict(sorted(record.minted.items())),
        "family_jsons": [j.decode("utf-8") for j in family_jsons],  # in the members' order of first use
        "members": [_member(m, family_jsons[m.family_json]) for m in members],
        "decisions": [_decision(d) for d in record.decisions],  # the order applied is part of the state
    }
    return _canonical(doc)


def encode_positions(record: PositionsRecord) -> bytes:
    """A positions record's value: canonical JSON, the positions sorted."""
    rows = [[t, p, o] for (t, p), o in sorted(record.change_positions.items())]
    return _canonical({"v": VERSION, "change_positions": rows})


def encode_decision_positions(record: DecisionPositionsRecord) -> bytes:
    """A decision-positions record's value: canonical JSON, the positions sorted."""
    rows = [[t, p, o] for (t, p), o in sorted(record.decision_positions.items())]
    return _canonical({"v": VERSION, "decision_positions": rows})


def decode_any(value: bytes, partition: int) -> FamilyRecord | PositionsRecord | DecisionPositionsRecord:
    """A record's value back (a family's members placed in `partition`'s file); refuses an unknown version."""
    doc = json.loads(value)
    if doc.get("v") not in READABLE:
        raise ChangelogVersionError(f"changelog record version {doc.get('v')!r}, this linker reads {sorted(READABLE)}")
    if "change_positions" in doc:
        return PositionsRecord({(str(t), int(p)): int(o) for t, p, o in doc["change_positions"]})
    if "decision_positions" in doc:
        return DecisionPositionsRecord({(str(t), int(p)): int(o) for t, p, o in doc["decision_positions"]})
    shared = [j.encode("utf-8") for j in doc.get("family_jsons", ())]  # layout 3

    def family_json(value: str | int) -> bytes:
        return shared[value] if isinstance(value, int) else value.encode("utf-8")  # layouts 1-2: the text

    members = tuple(
        MemberState(
            member_key=m["member_key"],
            family_key=m["family_key"],
            revision=m["revision"],
            decision=m["decision"],
            link_nik=m["link_nik"],
            query=MemberQuery(**m["query"]),
            member_json=m["member_json"].encode("utf-8"),
            family_json=family_json(m["family_json"]),
            master_kk=m["master_kk"],
            master_dead=m["master_dead"],
            present=m["present"],
            partition=partition,
            blocking_keys=None if m["blocking_keys"] is None else tuple(m["blocking_keys"]),
        )
        for m in doc["members"]
    )
    decisions = tuple(
        AppliedDecision(
            d["decision_id"],
            d["task_id"],
            d["member_key"],
            int(d["sequence"]),
            ReviewOutcome(d["outcome"]),
            d["chosen_nik"],
            d["probability"],
            d["match_weight"],
            d["identity"],
            d["revokes"],
            d["reviewer_id"],
            bool(d["held"]),
        )
        for d in doc.get("decisions", ())  # layout 1: none
    )
    state = FamilyState(
        doc["revision"], doc["submission_id"], tuple(doc["serials"]), doc["owner"], tuple(doc["open_feedback"])
    )
    return FamilyRecord(doc["family_key"], state, dict(doc["minted"]), members, decisions)


def decode(value: bytes, partition: int) -> FamilyRecord:
    """A family record's value back; refuses an unknown version and a positions record."""
    record = decode_any(value, partition)
    if not isinstance(record, FamilyRecord):
        raise ValueError("a positions record, not a family's state")
    return record


def family_records(
    update: StoreUpdate,
    stored_minted: Callable[[Iterable[str]], Mapping[str, Mapping[str, str]]],
    stored_decisions: Callable[[Iterable[str]], Mapping[str, Sequence[AppliedDecision]]] | None = None,
) -> list[FamilyRecord]:
    """The changelog records of a batch's update: each changed family's state after the batch.

    `stored_minted(family_keys)` gives the ids the store holds for those families' members (before the
    batch); the batch's new ids are added (an id once minted never changes, so stored ones win).
    `stored_decisions(family_keys)` the clerical decisions the store holds of their members (a
    submissions batch applies none).
    """
    keys = sorted(update.families)
    stored = stored_minted(keys)
    decided = stored_decisions(keys) if stored_decisions is not None else {}
    minted: dict[str, dict[str, str]] = {k: {} for k in keys}
    for member_key, person_id in update.minted.items():
        minted.setdefault(member_key[:_FAMILY_KEY_LENGTH], {})[member_key] = person_id
    members: dict[str, list[MemberState]] = {k: [] for k in keys}
    for m in update.members.values():
        members.setdefault(m.family_key, []).append(m)
    return [
        FamilyRecord(
            key,
            update.families[key],
            {**minted[key], **stored.get(key, {})},
            tuple(sorted(members[key], key=lambda m: m.member_key)),
            tuple(decided.get(key, ())),
        )
        for key in keys
    ]


def file_records(
    file: LinkStore,
    partition: int,
    family_keys: Iterable[str],
    members: Mapping[str, MemberState] | None = None,
    decisions: Sequence[AppliedDecision] = (),
) -> list[FamilyRecord]:
    """The state records of families of one file after a write outside a submissions batch: what the
    file holds of them with `members` (new member states) and `decisions` (newly applied) on top.

    Families the file does not hold are left out (a decision or change only touches stored members).
    """
    keys = sorted(set(family_keys))
    states = file.families(keys)
    minted = file.family_minted(keys)
    held = file.family_decisions(keys)
    current: dict[str, dict[str, MemberState]] = defaultdict(dict)
    for m in file.find_family_members(keys, partition):
        current[m.family_key][m.member_key] = m
    for m in (members or {}).values():
        if m.family_key in current:  # a member the file holds: its new state
            current[m.family_key][m.member_key] = m
    new: dict[str, list[AppliedDecision]] = defaultdict(list)
    for d in decisions:
        new[d.member_key[:_FAMILY_KEY_LENGTH]].append(d)
    out = []
    for key in keys:
        if key not in states:
            continue
        known = {d.decision_id for d in held.get(key, ())}
        logged = [*held.get(key, ()), *(d for d in new.get(key, ()) if d.decision_id not in known)]
        mine = tuple(sorted(current[key].values(), key=lambda m: m.member_key))
        out.append(FamilyRecord(key, states[key], dict(minted.get(key, {})), mine, tuple(logged)))
    return out


@dataclass(frozen=True)
class ChangelogWrite:
    """What one write of state records reached: per changelog partition the next offset after its
    committed records, and the partitions whose write was FENCED (another instance took the partition
    over: nothing of theirs was committed, and this instance must not apply that part to its file)."""

    after: dict[int, int]
    fenced: frozenset[int] = frozenset()


class ChangelogWriter(Protocol):
    """Writes state records to the changelog, per partition (the Kafka adapter, fenced by producer
    epochs: services/linker/changelog_kafka.py `KafkaChangelogWriter`)."""

    async def write(self, records: Mapping[int, Sequence[tuple[bytes, bytes]]]) -> ChangelogWrite:
        """Write each partition's (key, value) records, in order, and return once they are committed
        (acknowledged); a partition another instance took over comes back in `fenced`."""
        ...


@dataclass(frozen=True)
class SendWriter:
    """A `ChangelogWriter` over a plain sender: no transactions, no fence (unit tests' fakes)."""

    topic: str
    send: Send

    async def write(self, records: Mapping[int, Sequence[tuple[bytes, bytes]]]) -> ChangelogWrite:
        """Send every record, await every acknowledgement."""
        pending = [
            await self.send(OutboundRecord(self.topic, k, v, None, p))
            for p, rs in sorted(records.items())
            for k, v in rs
        ]
        after: dict[int, int] = {}
        for meta in await asyncio.gather(*pending) if pending else []:
            after[meta.partition] = max(after.get(meta.partition, 0), int(meta.offset) + 1)
        return ChangelogWrite(after)


@dataclass(frozen=True)
class ChangelogSink:
    """Writes state records to the changelog and awaits their commits (the decision and update paths; a
    submissions batch writes its records next to the batch's outputs, services/linker/app.py)."""

    writer: ChangelogWriter

    async def write(
        self,
        families: Mapping[int, Sequence[FamilyRecord]],
        positions: Mapping[int, ChangePositions] | None = None,
        decision_positions: Mapping[int, DecisionPositions] | None = None,
    ) -> ChangelogWrite:
        """Write each partition's family records, then its positions record(s) (change positions, decision
        positions), in ONE write per partition (with the Kafka writer: one transaction, so a reader sees
        the positions only with the families they cover); returns per changelog partition the next offset
        after the committed records, and the partitions fenced (another instance owns them now: the
        caller must not apply them)."""
        records: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for p, rs in sorted(families.items()):
            records[p].extend((r.family_key.encode(), encode(r)) for r in rs)
        for p, at in sorted((positions or {}).items()):
            records[p].append((POSITIONS_KEY.encode(), encode_positions(PositionsRecord(at))))
        for p, at in sorted((decision_positions or {}).items()):
            value = encode_decision_positions(DecisionPositionsRecord(at))
            records[p].append((DECISION_POSITIONS_KEY.encode(), value))
        if not records:
            return ChangelogWrite({})
        return await self.writer.write(records)


class ChangelogReader(Protocol):
    """Reads one changelog partition (the Kafka adapter: services/linker/changelog_kafka.py)."""

    def read(self, partition: int, from_offset: int) -> tuple[list[bytes], int]:
        """The values from `from_offset` to the partition's current end, in offset order, and the end
        (the next offset); a record without a value (a tombstone) is left out."""
        ...

    def chunks(self, partition: int, from_offset: int, max_records: int) -> Iterator[tuple[list[bytes], int]]:
        """The same values in chunks of at most `max_records`, each with the next offset after it (the
        last chunk's is the end the read began with); nothing when there is nothing to read."""
        ...


def latest_per_family(values: Sequence[bytes], partition: int) -> list[FamilyRecord]:
    """The family records of a changelog read, the last one of each family kept (what compaction keeps)."""
    return latest(values, partition)[0]


def latest(values: Sequence[bytes], partition: int) -> tuple[list[FamilyRecord], PositionsRecord | None]:
    """The family records of a changelog read, the last one of each family kept (what compaction
    keeps), and the last positions record (None: none read)."""
    read = latest_read(values, partition)
    return read.families, read.positions


@dataclass(frozen=True)
class LatestRead:
    """What a changelog read leaves: each family's last record, the last change-positions record and the
    last decision-positions record (None: none read)."""

    families: list[FamilyRecord]
    positions: PositionsRecord | None
    decision_positions: DecisionPositionsRecord | None


def latest_read(values: Sequence[bytes], partition: int) -> LatestRead:
    """The last record of each family and of each positions key of a changelog read (what compaction keeps)."""
    families: dict[str, FamilyRecord] = {}
    positions: PositionsRecord | None = None
    decided: DecisionPositionsRecord | None = None
    for value in values:
        record = decode_any(value, partition)
        if isinstance(record, PositionsRecord):
            positions = record
        elif isinstance(record, DecisionPositionsRecord):
            decided = record
        else:
            families[record.family_key] = record
    return LatestRead([families[k] for k in sorted(families)], positions, decided)


def restore(
    store: LinkStore,
    partition: int,
    reader: ChangelogReader,
    *,
    chunk_records: int = CHUNK_RECORDS,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Bring one partition's file up to its changelog's end; returns how many changelog records it read.

    Reads from the offset the file reflects (0 for a new file) in chunks of at most `chunk_records`
    records; each chunk replaces each of its families' state in the file by its latest record (a later
    chunk's record of a family replaces an earlier one's, as a later offset does) and stores the
    chunk's end offset, in one transaction. A crash between chunks leaves a consistent file that the
    next open continues from. `stop()`, asked after each chunk, ends the restore there (a standby
    replica giving a partition up to its owner).
    """
    start = store.changelog_position(partition)
    read = families = 0
    end = start
    chunks = iter(reader.chunks(partition, start, chunk_records))
    try:
        for values, next_offset in chunks:
            read_ = latest_read(values, partition)
            records, positions, decided = read_.families, read_.positions, read_.decision_positions
            store.replace_families(
                records_update(records),
                {partition: next_offset},
                decisions=[d for r in records for d in r.decisions],
                change_positions=None if positions is None else positions.change_positions,
                decision_positions=None if decided is None else decided.decision_positions,
            )
            read += len(values)
            families += len(records)
            end = next_offset
            if stop is not None and stop():
                break
    finally:
        close = getattr(chunks, "close", None)  # a generator: its Kafka consumer is closed now
        if close is not None:
            close()
    if read:
        log.info(
            "link-store file p%d restored from the changelog: %d records, %d family states, offsets %d..%d",
            partition,
            read,
            families,
            start,
            end,
        )
    return read


def records_update(records: Iterable[FamilyRecord]) -> StoreUpdate:
    """The families of changelog records as one store update (families, minted ids, members)."""
    update = StoreUpdate()
    for r in records:
        update.families[r.family_key] = r.state
        update.minted.update(r.minted)
        update.members.update((m.member_key, m) for m in r.members)
    return update
