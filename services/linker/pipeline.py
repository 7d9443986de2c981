"""One micro-batch of valid submissions -> the outbound records and the link-store update.

Pure with respect to Kafka: the faust agent (`app.py`) feeds it decoded submissions and produces what it
returns. Two steps: `prelink` runs the engine on the latest revision of every family (no store), then
`finish` reads the batch's view of the link store (`BatchStore`, given by the caller) and builds the
records. The store is only READ here; the caller applies `BatchResult.update` after the broker
acknowledged every record, so a crash in between re-processes the batch to the same bytes.

Revision rule: per family key the highest revision wins. A revision lower than the one in the store (or
than another one in the same batch) is stale and produces nothing; an equal one is re-processed (a
re-delivery) and yields identical records.

Before that, `services.linker.admission` refuses revisions from a team other than the family's owner
and revisions that jump too far ahead (`BatchResult.refused`, dead-lettered by the caller).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.family import FAMILY_KEY_LENGTH
from contracts.feedback import FieldFeedback
from contracts.linkage_outputs import to_canonical_json
from contracts.submission import FamilySubmission
from integration.clerical import override_link
from integration.feedback import Duplicate, OpenItem, derive_feedback, find_duplicate, present_linked_niks
from integration.ids import PersonIds
from integration.mapping import family_queries
from integration.outputs import FamilyOutputs, build_family_outputs, event_time_of
from integration.port import Band, MemberLink, MemberLinker, MemberQuery
from services.linker.admission import AdmissionRules, Refusal, admit
from services.linker.batcher import chunk_by_members
from services.linker.member_state import member_states
from services.linker.store import BatchStore, FamilyState, StoreUpdate


@dataclass(frozen=True)
class OutputTopics:
    """Where the linker writes."""

    members: str
    families: str
    review: str
    #: Field feedback (`field.feedback.v1`); None: not produced.
    feedback: str | None = None


@dataclass(frozen=True)
class OutboundRecord:
    """One record to produce; `value=None` is a tombstone (a member removed by a newer revision).

    `event_time`: when the event behind the record happened (the submission's `enumerated_at`, a change
    record's broker timestamp, a decision's `decided_at`). The producer turns it into the record's
    CloudEvents `ce_time` header and its Kafka timestamp (`services.kafka.events`); None only in tests and
    on the linker's internal changelog.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    event_time: dt.datetime | None = None
    #: An explicit partition (the link-state changelog: the family's submissions partition); None: the
    #: producer's partitioner.
    partition: int | None = None


#: Produce one record; the awaited result is a future that resolves when the broker acknowledged it. The
#: service's sender adds the CloudEvents headers and the Kafka timestamp (`services.kafka.events`).
Send = Callable[[OutboundRecord], Awaitable[Awaitable[Any]]]


@dataclass
class BatchResult:
    """The outcome of one micro-batch."""

    records: list[OutboundRecord] = field(default_factory=list)
    update: StoreUpdate = field(default_factory=StoreUpdate)
    families_linked: int = 0
    members_linked: int = 0
    stale: int = 0
    # For metrics (region progress): the band of each member of each current revision, "no_match"
    # for a band without a master candidate (not a link), and how many of them had no NIK.
    family_bands: dict[str, tuple[Band, ...]] = field(default_factory=dict)
    members_without_nik: int = 0
    #: Submissions (by position in the batch) refused by the owner or revision-step rule.
    refused: list[Refusal] = field(default_factory=list)
    #: Field feedback records of this batch (also in `records` when the feedback topic is set).
    feedback: list[FieldFeedback] = field(default_factory=list)


@dataclass(frozen=True)
class Prelinked:
    """A batch linked before its store read (`SubmissionLinker.prelink`)."""

    submissions: Sequence[FamilySubmission]
    teams: Sequence[str | None]
    latest: dict[str, FamilySubmission]
    links: dict[str, MemberLink]
    queries: dict[str, MemberQuery]


class SubmissionLinker:
    """Links micro-batches of valid submissions through a `MemberLinker` port."""

    def __init__(
        self,
        linker: MemberLinker,
        ids: PersonIds,
        topics: OutputTopics,
        *,
        max_members_per_call: int = 1000,
        village_crosswalk: Mapping[str, str] | None = None,
        rules: AdmissionRules | None = None,
    ) -> None:
        self._linker = linker
        self._ids = ids
        self._topics = topics
        self._max_members = max_members_per_call
        self._crosswalk = dict(village_crosswalk or {})
        self._rules = rules or AdmissionRules()

    def prelink(self, submissions: Sequence[FamilySubmission], teams: Sequence[str | None] | None = None) -> Prelinked:
        """Step 1, without the store: link the latest revision of every family in the batch.

        `teams[i]` is the team that sent `submissions[i]` (None: unknown); all None when not given.

        Lets the engine run while the previous batch's link-store write is still in progress; a
        revision the store then shows to be stale was linked for nothing and is dropped by `finish`.
        """
        teams = _teams_of(submissions, teams)
        latest = self._latest_per_family(submissions)
        links, queries = self._link(list(latest.values())) if latest else ({}, {})
        return Prelinked(submissions, teams, latest, links, queries)

    def finish(self, pre: Prelinked, store: BatchStore) -> BatchResult:
        """Step 2: read the batch's view of the link store, refuse and drop stale revisions, build the
        records (the store is not written: the caller applies `BatchResult.update`)."""
        stored, latest, refused, owners = self._admitted(store, pre.submissions, pre.teams)
        current = self._current(stored, latest)
        if not current:
            return BatchResult(stale=len(pre.submissions) - len(refused), refused=refused)
        links, queries = pre.links, pre.queries
        # A refusal can hit the revision prelink chose; the family's admitted one is linked now.
        relink = [sub for sub in current if pre.latest.get(sub.family_key.key) is not sub]
        if relink:
            keys = {sub.family_key.key for sub in relink}
            links = {k: v for k, v in links.items() if k[:FAMILY_KEY_LENGTH] not in keys}
            queries = {k: v for k, v in queries.items() if k[:FAMILY_KEY_LENGTH] not in keys}
            more_links, more_queries = self._link(relink)
            links.update(more_links)
            queries.update(more_queries)
        arrival = _arrival(pre.submissions, current)
        return self._build(store, len(pre.submissions), stored, current, links, queries, refused, owners, arrival)

    def _admitted(
        self, store: BatchStore, submissions: Sequence[FamilySubmission], teams: Sequence[str | None]
    ) -> tuple[dict[str, FamilyState], dict[str, FamilySubmission], list[Refusal], dict[str, str | None]]:
        """The stored states, the latest admitted revision per family, the refusals and the owners."""
        stored = store.families({sub.family_key.key for sub in submissions})
        admission = admit(submissions, teams, stored, self._rules)
        latest = self._latest_per_family([submissions[i] for i in admission.accepted])
        return stored, latest, admission.refused, admission.owners

    @staticmethod
    def _current(stored: Mapping[str, FamilyState], latest: Mapping[str, FamilySubmission]) -> list[FamilySubmission]:
        return [sub for key, sub in latest.items() if key not in stored or sub.revision >= stored[key].revision]

    def _build(
        self,
        store: BatchStore,
        submissions: int,
        stored: Mapping[str, FamilyState],
        current: Sequence[FamilySubmission],
        links: Mapping[str, MemberLink],
        queries: Mapping[str, MemberQuery],
        refused: list[Refusal],
        owners: Mapping[str, str | None],
        arrival: Mapping[str, tuple[int, int]],
    ) -> BatchResult:
        result = BatchResult(stale=submissions - len(refused) - len(current), refused=refused)
        model_version = self._linker.model_version
        minted = store.minted_ids(sub.member_key(m) for sub in current for m in sub.members)
        # Human decisions are sticky: a reviewer's decision replaces the engine's link as long as the
        # member's identity fields are those the reviewer saw (integration/clerical.py).
        sticky = store.sticky_decisions(sub.member_key(m) for sub in current for m in sub.members)
        if sticky:
            links = {k: override_link(v, sticky.get(k), queries[k]) if k in sticky else v for k, v in links.items()}
        duplicates = self._duplicates(store, current, links, owners, stored, arrival)
        for sub in current:
            key = sub.family_key.key
            out = build_family_outputs(sub, links, self._ids, model_version, minted)
            serials = tuple(sorted(m.serial for m in sub.members))
            previous = stored.get(key)
            event_time = event_time_of(sub)
            records = self._records(key, out, serials, previous, event_time)
            result.records.extend(records)
            owner = owners.get(key)
            open_feedback: tuple[str, ...] = ()
            if owner is not None:
                before = [OpenItem.decode(t) for t in previous.open_feedback] if previous is not None else []
                feedback = derive_feedback(sub, owner, links, before, duplicates.get(key))
                open_feedback = tuple(item.encode() for item in feedback.open_items)
                result.feedback.extend(feedback.records)
                if self._topics.feedback is not None:
                    result.records.extend(
                        OutboundRecord(self._topics.feedback, f.item_id.encode(), to_canonical_json(f), event_time)
                        for f in feedback.records
                    )
            result.update.families[key] = FamilyState(sub.revision, sub.submission_id, serials, owner, open_feedback)
            result.update.minted.update(out.minted)
            # What a later master change needs to find and re-link these members (services/linker/updates).
            result.update.members.update(member_states(sub, out, links, queries, self._encoded(records)))
            if previous is not None:
                dropped = set(previous.serials) - set(serials)
                result.update.dropped_members.update(f"{key}-{s:02d}" for s in dropped)
            result.members_linked += len(out.members)
            member_keys = [sub.member_key(m) for m in sub.members]
            result.family_bands[key] = tuple(_linked_band(links[k]) for k in member_keys)
            result.members_without_nik += sum(1 for k in member_keys if not queries[k].nik)
        result.families_linked = len(current)
        return result

    def _duplicates(
        self,
        store: BatchStore,
        current: Sequence[FamilySubmission],
        links: Mapping[str, MemberLink],
        owners: Mapping[str, str | None],
        stored: Mapping[str, FamilyState],
        arrival: Mapping[str, tuple[int, int]],
    ) -> dict[str, Duplicate]:
        """Families whose present linked members were already submitted under another family key.

        "Already": the other family is in the link store (an earlier batch, on a partition this instance
        holds) or came earlier in this batch; so a batch decides as its records one by one would.
        """
        batch_niks = {sub.family_key.key: present_linked_niks(sub, links) for sub in current}
        niks = {key: found for key, found in batch_niks.items() if owners.get(key)}
        wanted = set().union(*niks.values()) if niks else set()
        if not wanted:
            return {}
        in_store = store.linked_families(wanted)
        out: dict[str, Duplicate] = {}
        for key, mine in niks.items():
            if len(mine) < 2:
                continue
            seen_at = arrival[key][1]
            # The batch's own revision of a family that came earlier replaces its stored one.
            others = dict(in_store)
            others.update((k, v) for k, v in batch_niks.items() if k != key and arrival[k][0] < seen_at)
            other = find_duplicate(key, mine, others)
            if other is None:
                continue
            other_owner = stored[other].owner if other in stored else owners.get(other)
            out[key] = Duplicate(other, same_team=other_owner is not None and other_owner == owners.get(key))
        return out

    @staticmethod
    def _latest_per_family(submissions: Sequence[FamilySubmission]) -> dict[str, FamilySubmission]:
        latest: dict[str, FamilySubmission] = {}
        for sub in submissions:
            key = sub.family_key.key
            # Ties keep the later message: same revision re-sent is a re-delivery with equal content.
            if key not in latest or sub.revision >= latest[key].revision:
                latest[key] = sub
        return dict(sorted(latest.items()))

    def _link(self, submissions: Sequence[FamilySubmission]) -> tuple[dict[str, MemberLink], dict[str, MemberQuery]]:
        queries = [q for sub in submissions for q in family_queries(sub, self._crosswalk)]
        links: dict[str, MemberLink] = {}
        for chunk in chunk_by_members(queries, self._max_members):
            answers = self._linker.link(chunk)
            if len(answers) != len(chunk):
                raise RuntimeError(f"the linker returned {len(answers)} links for {len(chunk)} members")
            links.update((a.record_id, a) for a in answers)
        return links, {q.record_id: q for q in queries}

    def _encoded(self, records: Sequence[OutboundRecord]) -> dict[bytes, bytes]:
        """The member and family values just encoded, by key (the member state keeps them; no re-encoding)."""
        wanted = (self._topics.members, self._topics.families)
        return {r.key: r.value for r in records if r.topic in wanted and r.key is not None and r.value is not None}

    def _records(
        self,
        family_key: str,
        out: FamilyOutputs,
        serials: tuple[int, ...],
        previous: FamilyState | None,
        time: dt.datetime,
    ) -> list[OutboundRecord]:
        t = self._topics
        records = [OutboundRecord(t.members, m.member_key.encode(), to_canonical_json(m), time) for m in out.members]
        # Members dropped by a newer revision: a tombstone so the compacted topic forgets them.
        if previous is not None:
            for serial in sorted(set(previous.serials) - set(serials)):
                records.append(OutboundRecord(t.members, f"{family_key}-{serial:02d}".encode(), None, time))
        records.extend(OutboundRecord(t.review, r.member_key.encode(), to_canonical_json(r), time) for r in out.reviews)
        records.append(OutboundRecord(t.families, family_key.encode(), to_canonical_json(out.family), time))
        return records


def _linked_band(link: MemberLink) -> Band:
    # A band without a candidate NIK is not a link (the same rule as the member records).
    return link.band if link.master_nik else "no_match"


def _arrival(
    submissions: Sequence[FamilySubmission], current: Sequence[FamilySubmission]
) -> dict[str, tuple[int, int]]:
    """Per current family: the batch position of its first record and of its current revision."""
    first: dict[str, int] = {}
    at: dict[str, int] = {}
    chosen = {id(sub) for sub in current}
    for index, sub in enumerate(submissions):
        key = sub.family_key.key
        first.setdefault(key, index)
        if id(sub) in chosen:
            at[key] = index
    return {key: (first[key], at[key]) for key in at}


def _teams_of(submissions: Sequence[FamilySubmission], teams: Sequence[str | None] | None) -> Sequence[str | None]:
    if teams is None:
        return [None] * len(submissions)
    if len(teams) != len(submissions):
        raise ValueError(f"{len(teams)} teams for {len(submissions)} submissions")
    return teams
