"""The link store's per-member state: what a later master change needs to find and re-link a member.

One row per current member (table `member_links` in each link-store file): its revision, decision, the
NIK it is linked to (or the review candidate's), the engine query it was linked with, and the member
record last published. The submissions pipeline writes it with the family revision (same transaction);
the update applier reads it by probe and writes back re-linked members.

Finding the members a master record can affect: those linked (or pending review) to its NIK, and the
members without a master link that share one of its blocking-key hashes (`block_keys`: the engine's
hash per blocking rule, `MemberLink.blocking_keys`): exactly the members the engine's blocking could
pair with the new or corrected record. Rows written before that column existed (NULL keys) are still
found the old way, by the query's NIK, birth date or normalised name.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import duckdb
import pyarrow as pa

from contracts.codes import Presence
from contracts.linkage_outputs import LinkedMember, MemberDecision, to_canonical_json
from contracts.submission import FamilySubmission
from integration.outputs import FamilyOutputs, MasterFacts
from integration.port import MemberLink, MemberQuery

# Members who live in the household (a deceased-in-master flag only counts for them).
_PRESENT = (Presence.LIVES_HERE, Presence.NEW_MEMBER)

SCHEMA = """
CREATE TABLE IF NOT EXISTS member_links (
    member_key  VARCHAR NOT NULL,
    family_key  VARCHAR NOT NULL,
    revision    BIGINT NOT NULL,
    decision    VARCHAR NOT NULL,
    link_nik    VARCHAR,
    query_nik   VARCHAR,
    birth_date  VARCHAR,
    name_key    VARCHAR,
    master_kk   VARCHAR,
    master_dead BOOLEAN NOT NULL,
    present     BOOLEAN NOT NULL,
    q_kk_number VARCHAR, q_sex VARCHAR, q_birth_year INTEGER, q_age INTEGER, q_reference_year INTEGER,
    q_village_code VARCHAR, q_address VARCHAR, q_head_name VARCHAR,
    q_relationship INTEGER, q_submission_id VARCHAR, q_full_name VARCHAR,
    member_json VARCHAR NOT NULL,
    family_json VARCHAR NOT NULL,
    block_keys  BIGINT[]
);
-- files written before the blocking keys were stored: their rows keep NULL keys
ALTER TABLE member_links ADD COLUMN IF NOT EXISTS block_keys BIGINT[];
"""
# Files written before: their member_links also have q_bps_village_code and q_other_member_names,
# never read (the engine does not use them); rows written since leave them NULL.

# The engine query is kept column by column (no JSON encoding per member: thousands per batch).
_QUERY_COLUMNS = (
    "kk_number",
    "sex",
    "birth_year",
    "age",
    "reference_year",
    "village_code",
    "address",
    "head_name",
    "relationship",
    "submission_id",
    "full_name",
)
_COLUMNS = (
    "member_key",
    "family_key",
    "revision",
    "decision",
    "link_nik",
    "query_nik",
    "birth_date",
    "name_key",
    "master_kk",
    "master_dead",
    "present",
    *(f"q_{c}" for c in _QUERY_COLUMNS),
    "member_json",
    "family_json",
    "block_keys",
)


def name_key(name: str) -> str:
    """A name for probing: case-folded, single spaces."""
    return " ".join(name.casefold().split())


@dataclass(frozen=True)
class MemberState:
    """A member's current link as stored; `partition` says which link-store file it lives in.

    `master_kk` / `master_dead` are the linked master person's KK number and death, `present` whether
    the member lives in the household, `family_json` the family's integrated record last published:
    what rebuilding the family record after a re-link needs. `blocking_keys` are the query's
    blocking-key hashes (None: a row from before they were stored).
    """

    member_key: str
    family_key: str
    revision: int
    decision: str
    link_nik: str | None
    query: MemberQuery
    member_json: bytes
    family_json: bytes
    master_kk: str | None = None
    master_dead: bool = False
    present: bool = True
    partition: int = 0
    blocking_keys: tuple[int, ...] | None = None

    def current(self) -> tuple[LinkedMember, MasterFacts]:
        """The member record last published and the master facts the family flags need
        (`integration.outputs.rebuilt_family`)."""
        return LinkedMember.model_validate_json(self.member_json), MasterFacts(
            self.master_kk, self.master_dead, self.present
        )


@dataclass(frozen=True)
class Probe:
    """What a changed master record could match: its NIK and its blocking-key hashes (the engine's
    `master_keys`); its birth date and name for rows stored without keys."""

    niks: frozenset[str] = field(default_factory=frozenset)
    blocking_keys: frozenset[int] = field(default_factory=frozenset)
    birth_dates: frozenset[str] = field(default_factory=frozenset)
    name_keys: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.niks or self.blocking_keys or self.birth_dates or self.name_keys)


class _Row(NamedTuple):
    """One `member_links` row as selected (`_COLUMNS`), built from the cursor's column names."""

    member_key: str
    family_key: str
    revision: int
    decision: str
    link_nik: str | None
    query_nik: str | None
    birth_date: str | None
    name_key: str | None
    master_kk: str | None
    master_dead: bool
    present: bool
    q_kk_number: str | None
    q_sex: str | None
    q_birth_year: int | None
    q_age: int | None
    q_reference_year: int
    q_village_code: str | None
    q_address: str | None
    q_head_name: str
    q_relationship: int | None
    q_submission_id: str
    q_full_name: str
    member_json: str
    family_json: str
    block_keys: list[int] | None


# Rows written while queries held "" for unknown text: read back as None, like rows written since.
_UNKNOWN_AS_EMPTY = ("kk_number", "sex", "village_code", "address")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, parameters: list[object]) -> list[_Row]:
    """The selected rows, each built by column name (never by position)."""
    cursor = con.execute(sql, parameters)
    names = [d[0] for d in cursor.description]
    return [_Row(**dict(zip(names, values, strict=True))) for values in cursor.fetchall()]


def _query_of(row: _Row) -> MemberQuery:
    fields = {c: getattr(row, f"q_{c}") for c in _QUERY_COLUMNS}
    fields.update({c: fields[c] or None for c in _UNKNOWN_AS_EMPTY})
    return MemberQuery(
        record_id=row.member_key, nik=row.query_nik, birth_date=row.birth_date, family_key=row.family_key, **fields
    )


def write_members(
    con: duckdb.DuckDBPyConnection,
    states: Mapping[str, MemberState],
    dropped: Iterable[str] = (),
    *,
    existing: Collection[str] | None = None,
) -> None:
    """Replace the rows of these members and delete dropped members, in the caller's transaction.

    No revision check here: the pipeline writes only current revisions (stale ones produce nothing)
    and the applier writes states it read under the same lock. No primary key either: a delete and
    an append per batch cost a fraction of an indexed upsert (bench: 4,000 members ~40 ms vs ~300 ms).
    `existing`: the members of `states` that may already have a row (None: any of them). The delete
    scans the whole table, so the link store passes the members of families it already holds, and a
    batch of new families (the usual case) deletes nothing.
    """
    gone = sorted(set(dropped))
    if gone:
        con.execute("DELETE FROM member_links WHERE member_key IN (SELECT unnest(?))", [gone])
    if not states:
        return
    rows = [states[k] for k in sorted(states)]
    batch = pa.table(
        {
            "member_key": [s.member_key for s in rows],
            "family_key": [s.family_key for s in rows],
            "revision": pa.array([s.revision for s in rows], pa.int64()),
            "decision": [s.decision for s in rows],
            "link_nik": [s.link_nik for s in rows],
            "query_nik": [s.query.nik for s in rows],
            "birth_date": [s.query.birth_date for s in rows],
            "name_key": [name_key(s.query.full_name) or None for s in rows],
            "master_kk": [s.master_kk for s in rows],
            "master_dead": [s.master_dead for s in rows],
            "present": [s.present for s in rows],
            **{f"q_{c}": [getattr(s.query, c) for s in rows] for c in _QUERY_COLUMNS},
            "member_json": [s.member_json.decode("utf-8") for s in rows],
            "family_json": [s.family_json.decode("utf-8") for s in rows],
            "block_keys": pa.array([s.blocking_keys for s in rows], pa.list_(pa.int64())),
        }
    )
    con.register("member_batch", batch)
    try:
        if existing is None:
            con.execute("DELETE FROM member_links WHERE member_key IN (SELECT member_key FROM member_batch)")
        elif existing:
            con.execute("DELETE FROM member_links WHERE member_key IN (SELECT unnest(?))", [sorted(existing)])
        con.execute(f"INSERT INTO member_links ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM member_batch")
    finally:
        con.unregister("member_batch")


def find_members(con: duckdb.DuckDBPyConnection, probe: Probe, partition: int = 0) -> list[MemberState]:
    """Members linked or pending review to a probed NIK, and members without a link sharing a probed
    NIK or blocking key (rows stored without keys: sharing a probed NIK, birth date or name)."""
    if not probe:
        return []
    niks, keys = sorted(probe.niks), sorted(probe.blocking_keys)
    dates, names = sorted(probe.birth_dates), sorted(probe.name_keys)
    rows = _rows(
        con,
        f"SELECT {', '.join(_COLUMNS)} FROM member_links "
        "WHERE link_nik IN (SELECT unnest(?)) OR (decision <> 'linked' AND ("
        "query_nik IN (SELECT unnest(?)) OR list_has_any(block_keys, ?::BIGINT[]) "
        "OR (block_keys IS NULL AND (birth_date IN (SELECT unnest(?)) OR name_key IN (SELECT unnest(?))))"
        ")) ORDER BY member_key",
        [niks, niks, keys, dates, names],
    )
    return [_state(r, partition) for r in rows]


def find_family_members(
    con: duckdb.DuckDBPyConnection, family_keys: Iterable[str], partition: int = 0
) -> list[MemberState]:
    """Every stored member of the given families."""
    keys = sorted(set(family_keys))
    if not keys:
        return []
    rows = _rows(
        con,
        f"SELECT {', '.join(_COLUMNS)} FROM member_links WHERE family_key IN (SELECT unnest(?)) ORDER BY member_key",
        [keys],
    )
    return [_state(r, partition) for r in rows]


def _state(row: _Row, partition: int) -> MemberState:
    return MemberState(
        member_key=row.member_key,
        family_key=row.family_key,
        revision=row.revision,
        decision=row.decision,
        link_nik=row.link_nik,
        master_kk=row.master_kk,
        master_dead=row.master_dead,
        present=row.present,
        query=_query_of(row),
        member_json=row.member_json.encode("utf-8"),
        family_json=row.family_json.encode("utf-8"),
        partition=partition,
        blocking_keys=None if row.block_keys is None else tuple(row.block_keys),
    )


def member_states(
    submission: FamilySubmission,
    out: FamilyOutputs,
    links: Mapping[str, MemberLink],
    queries: Mapping[str, MemberQuery],
    encoded: Mapping[bytes, bytes] | None = None,
) -> dict[str, MemberState]:
    """The states of one freshly linked family's members (its outputs, the engine's links, the queries).

    `encoded` may hold the canonical JSON of the member and family records by key (already encoded
    for producing), so they are not encoded twice.
    """
    known = encoded or {}
    present = {submission.member_key(m): m.presence in _PRESENT for m in submission.members}
    family_json = known.get(out.family.family_key.encode()) or to_canonical_json(out.family)
    states: dict[str, MemberState] = {}
    for m in out.members:
        link = links[m.member_key]
        has_link = m.decision is not MemberDecision.NOT_LINKED
        states[m.member_key] = MemberState(
            member_key=m.member_key,
            family_key=m.family_key,
            revision=m.revision,
            decision=m.decision.value,
            link_nik=link.master_nik if has_link else None,
            query=queries[m.member_key],
            family_json=family_json,
            member_json=known.get(m.member_key.encode()) or to_canonical_json(m),
            master_kk=link.master_kk_number,
            master_dead=link.master_deceased,
            present=present[m.member_key],
            blocking_keys=link.blocking_keys,
        )
    return states
