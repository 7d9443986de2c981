"""The link store's changelog: each family's state as a record on a compacted Kafka topic.

The per-partition DuckDB files (services/linker/partitioned_store.py) are a cache of this log. A
submissions batch sends one record per family it changed (key: the family key; value: the family's
whole state after the batch, `encode`) to the changelog partition numbered like the submissions
partition the family arrived on, together with the batch's outputs, and awaits their
acknowledgements before the file is written and before the offsets are committed. The file keeps the
next changelog offset it reflects (`changelog_positions`). When a partition's file is opened (after an
assignment, or the first time), `restore` reads that changelog partition from the file's offset to its
end and applies the latest record of each family: an instance with an empty disk rebuilds the state
of a partition it takes over, and one whose file is behind (the partition was owned elsewhere in the
meantime) catches up. With a shared folder the file is current and the read finds nothing.

A record holds what the file holds of the family: its revision state (revision, submission id,
serials, owner, open feedback), every person id minted for its members (those of members a later
revision dropped too: a member that comes back keeps its id), and the link state of its current
members (`member_state.MemberState`, for master updates). The value is canonical JSON (sorted keys, no
spaces), so a re-processed batch writes byte-identical records. Not in it (yet): clerical decisions
(`decision_store`) and master-update re-links made after the family's last submission, which the
decision and update agents write to the file only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from integration.port import MemberQuery
from services.linker.member_state import MemberState
from services.linker.store import FamilyState, LinkStore, StoreUpdate

log = logging.getLogger("regsosek.linker.changelog")

#: Version of the record's layout (a field of every value); a reader refuses other versions.
VERSION = 1
_FAMILY_KEY_LENGTH = 22


class ChangelogVersionError(ValueError):
    """A changelog record of a layout this code does not know (written by a newer linker)."""


@dataclass(frozen=True)
class FamilyRecord:
    """One family's state in the link store: the value of its changelog record."""

    family_key: str
    state: FamilyState
    minted: Mapping[str, str]  # member key -> person id, every id minted for the family
    members: tuple[MemberState, ...]  # the current members' link states, by member key


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


def _member(m: MemberState) -> dict[str, Any]:
    return {
        "member_key": m.member_key,
        "family_key": m.family_key,
        "revision": m.revision,
        "decision": m.decision,
        "link_nik": m.link_nik,
        "query": _query(m.query),
        "member_json": m.member_json.decode("utf-8"),
        "family_json": m.family_json.decode("utf-8"),
        "master_kk": m.master_kk,
        "master_dead": m.master_dead,
        "present": m.present,
        "blocking_keys": None if m.blocking_keys is None else list(m.blocking_keys),
    }


def encode(record: FamilyRecord) -> bytes:
    """The record's value: canonical JSON (the same state always gives the same bytes)."""
    s = record.state
    doc = {
        "v": VERSION,
        "family_key": record.family_key,
        "revision": s.revision,
        "submission_id": s.submission_id,
        "serials": list(s.serials),
        "owner": s.owner,
        "open_feedback": list(s.open_feedback),
        "minted": dict(sorted(record.minted.items())),
        "members": [_member(m) for m in sorted(record.members, key=lambda m: m.member_key)],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(value: bytes, partition: int) -> FamilyRecord:
    """A record's value back (its members placed in `partition`'s file); refuses an unknown version."""
    doc = json.loads(value)
    if doc.get("v") != VERSION:
        raise ChangelogVersionError(f"changelog record version {doc.get('v')!r}, this linker reads {VERSION}")
    members = tuple(
        MemberState(
            member_key=m["member_key"],
            family_key=m["family_key"],
            revision=m["revision"],
            decision=m["decision"],
            link_nik=m["link_nik"],
            query=MemberQuery(**m["query"]),
            member_json=m["member_json"].encode("utf-8"),
            family_json=m["family_json"].encode("utf-8"),
            master_kk=m["master_kk"],
            master_dead=m["master_dead"],
            present=m["present"],
            partition=partition,
            blocking_keys=None if m["blocking_keys"] is None else tuple(m["blocking_keys"]),
        )
        for m in doc["members"]
    )
    state = FamilyState(
        doc["revision"], doc["submission_id"], tuple(doc["serials"]), doc["owner"], tuple(doc["open_feedback"])
    )
    return FamilyRecord(doc["family_key"], state, dict(doc["minted"]), members)


def family_records(
    update: StoreUpdate, stored_minted: Callable[[Iterable[str]], Mapping[str, Mapping[str, str]]]
) -> list[FamilyRecord]:
    """The changelog records of a batch's update: each changed family's state after the batch.

    `stored_minted(family_keys)` gives the ids the store holds for those families' members (before the
    batch); the batch's new ids are added (an id once minted never changes, so stored ones win).
    """
    keys = sorted(update.families)
    stored = stored_minted(keys)
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
        )
        for key in keys
    ]


class ChangelogReader(Protocol):
    """Reads one changelog partition (the Kafka adapter: services/linker/changelog_kafka.py)."""

    def read(self, partition: int, from_offset: int) -> tuple[list[bytes], int]:
        """The values from `from_offset` to the partition's current end, in offset order, and the end
        (the next offset); a record without a value (a tombstone) is left out."""
        ...


def latest_per_family(values: Sequence[bytes], partition: int) -> list[FamilyRecord]:
    """The records of a changelog read, the last one of each family kept (what compaction keeps)."""
    latest: dict[str, FamilyRecord] = {}
    for value in values:
        record = decode(value, partition)
        latest[record.family_key] = record
    return [latest[k] for k in sorted(latest)]


def restore(store: LinkStore, partition: int, reader: ChangelogReader) -> int:
    """Bring one partition's file up to its changelog's end; returns how many families it replaced.

    Reads from the offset the file reflects (0 for a new file), replaces each read family's state in the
    file by its latest record, and stores the end offset, in one transaction.
    """
    start = store.changelog_position(partition)
    values, end = reader.read(partition, start)
    if end <= start and not values:
        return 0
    records = latest_per_family(values, partition)
    store.replace_families(records_update(records), {partition: end})
    if records:
        log.info(
            "link-store file p%d restored from the changelog: %d families, offsets %d..%d",
            partition,
            len(records),
            start,
            end,
        )
    return len(records)


def records_update(records: Iterable[FamilyRecord]) -> StoreUpdate:
    """The families of changelog records as one store update (families, minted ids, members)."""
    update = StoreUpdate()
    for r in records:
        update.families[r.family_key] = r.state
        update.minted.update(r.minted)
        update.members.update((m.member_key, m) for m in r.members)
    return update
