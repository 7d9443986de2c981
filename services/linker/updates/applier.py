"""Applying validated changes: master upsert, re-link the affected members, link updates (pure w.r.t. Kafka).

Per change, in order: write it to the engine's master (`MasterWriter`, incremental), find the members
it may affect in the link store (`MemberIndex`: members linked or pending review to its NIK, members
without a link sharing its NIK or one of its blocking-key hashes, i.e. every such member the engine's
blocking would pair with the record), re-link them with the engine, and compare each member's record
before and after. A changed record is re-emitted on `linkage.members.v1` (same key), a member newly in
the review band gets a review task, and every consequence becomes a `linkage.updates.v1` event (see
`contracts/linkage_updates.py`; the rules, pure, are in `integration/updates.py`). Members changed by an
earlier change of the same batch are seen in their new state. The store is only read here; the caller
saves `UpdateResult.states` after the broker acknowledged every record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contracts.linkage_outputs import IntegratedFamily, LinkedMember, MemberDecision, to_canonical_json
from integration.clerical import StickyDecision, override_link
from integration.ids import PersonIds
from integration.master import MasterPerson, MasterWriter
from integration.outputs import rebuilt_family
from integration.port import MemberLink, MemberLinker
from integration.updates import change_event_time, change_review_task, relinked_member, update_events
from services.linker.member_state import MemberState, Probe, name_key
from services.linker.pipeline import OutboundRecord
from services.linker.updates.changes import Change


class MemberIndex(Protocol):
    """The link store's member states, as the applier reads them."""

    def find(self, probe: Probe) -> list[MemberState]: ...

    def find_families(self, family_keys: Iterable[str]) -> list[MemberState]: ...

    def sticky_decisions(self, member_keys: Iterable[str]) -> dict[str, StickyDecision]: ...


class LinkingMaster(MemberLinker, MasterWriter, Protocol):
    """A `MemberLinker` whose master can be updated, and which tells a master person's blocking-key
    hashes (shared with a member's `MemberLink.blocking_keys` exactly when its blocking pairs them)."""

    def master_keys(self, person: MasterPerson) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class UpdateTopics:
    """Where the applier writes."""

    members: str
    review: str
    updates: str
    families: str


@dataclass
class UpdateResult:
    """The outcome of one batch of changes."""

    records: list[OutboundRecord] = field(default_factory=list)
    states: dict[str, MemberState] = field(default_factory=dict)
    #: The time of the latest change that re-linked a member of each family (its record's event time).
    family_times: dict[str, dt.datetime] = field(default_factory=dict)
    changes: int = 0
    relinked: int = 0
    events: int = 0


class ChangeApplier:
    """Applies changes to the master and turns their effect on stored links into records."""

    def __init__(self, linker: LinkingMaster, index: MemberIndex, ids: PersonIds, topics: UpdateTopics) -> None:
        self._linker = linker
        self._index = index
        self._ids = ids
        self._topics = topics

    def process(self, changes: Sequence[Change]) -> UpdateResult:
        """Apply `changes` in order; the records to produce and the member states to save afterwards."""
        result = UpdateResult()
        for change in changes:
            result.changes += 1
            probe = self._apply_to_master(change)
            found = {s.member_key: s for s in self._index.find(probe)}
            # Members changed earlier in this batch: their new state counts, and they may match now.
            for key, state in result.states.items():
                if key in found or _matches(state, probe):
                    found[key] = state
            states = [found[k] for k in sorted(found)]
            if not states:
                continue
            links = self._linker.link([s.query for s in states])
            if len(links) != len(states):
                raise RuntimeError(f"the linker returned {len(links)} links for {len(states)} members")
            # A reviewer's decision outlives master changes while the member's data is unchanged.
            sticky = self._index.sticky_decisions(s.member_key for s in states)
            if sticky:
                pairs = zip(states, links, strict=True)
                links = [override_link(k, sticky.get(s.member_key), s.query) for s, k in pairs]
            result.relinked += len(states)
            for state, link in zip(states, links, strict=True):
                self._member(change, state, link, result)
        self._families(result)
        return result

    def relink_one(self, change: Change, state: MemberState, link: MemberLink, result: UpdateResult) -> None:
        """One member's new link as `process` handles it (clerical decisions use it with their own link)."""
        self._member(change, state, link, result)

    def rebuild_families(self, result: UpdateResult) -> None:
        """Re-publish the families of the members in `result` whose record changed (as `process` does)."""
        self._families(result)

    def _families(self, result: UpdateResult) -> None:
        """Re-publish the integrated record of every family whose members were re-linked, if it changed."""
        touched = sorted({s.family_key for s in result.states.values()})
        if not touched:
            return
        members: dict[str, list[MemberState]] = {}
        for stored in self._index.find_families(touched):
            state = result.states.get(stored.member_key, stored)
            members.setdefault(state.family_key, []).append(state)
        for family_key in touched:
            states = members.get(family_key, [])
            if not states:
                continue
            old_json = states[0].family_json
            current = {s.member_key: s.current() for s in states}
            family = rebuilt_family(IntegratedFamily.model_validate_json(old_json), current)
            if to_canonical_json(family) == old_json:
                continue
            time = result.family_times[family_key]
            new_json = to_canonical_json(family.model_copy(update={"event_time": time}))
            result.records.append(OutboundRecord(self._topics.families, family_key.encode(), new_json, time))
            for state in states:  # every member row carries the family record last published
                result.states[state.member_key] = dataclasses.replace(state, family_json=new_json)

    def _apply_to_master(self, change: Change) -> Probe:
        if change.person is not None:
            p = change.person
            self._linker.upsert_master(p)
            return Probe(
                niks=frozenset({p.nik}),
                blocking_keys=frozenset(self._linker.master_keys(p)),
                birth_dates=frozenset({p.birth_date}),
                name_keys=frozenset({name_key(p.full_name)}),
            )
        if change.sectoral is not None:
            f = change.sectoral
            self._linker.set_sectoral(f.source, f.nik, f.sectoral_id, f.decile)
            return Probe(niks=frozenset({f.nik}))
        return Probe()  # a sectoral row without a NIK links to nobody by NIK

    def _member(self, change: Change, state: MemberState, link: MemberLink, result: UpdateResult) -> None:
        old = LinkedMember.model_validate_json(state.member_json)
        time = change_time(change)
        # Compared without the event time: a record that changes nothing else is not re-published.
        fresh = relinked_member(old, link, self._ids, self._linker.model_version)
        fresh = fresh.model_copy(update={"event_time": old.event_time})
        changed = to_canonical_json(fresh) != state.member_json
        new = fresh.model_copy(update={"event_time": time}) if changed else fresh
        new_json = to_canonical_json(new) if changed else state.member_json
        t = self._topics
        # The family record may change with the member's state alone (master KK, death): any change counts.
        result.family_times[new.family_key] = max(time, result.family_times.get(new.family_key, time))
        if changed:
            result.records.append(OutboundRecord(t.members, new.member_key.encode(), new_json, time))
        if new.decision is MemberDecision.PENDING_REVIEW and old.decision is not MemberDecision.PENDING_REVIEW:
            task = change_review_task(new, link, change.cause, self._ids, time)
            result.records.append(OutboundRecord(t.review, new.member_key.encode(), to_canonical_json(task), time))
        changed_nik = change.person.nik if change.person else change.sectoral.nik if change.sectoral else None
        for event in update_events(change.cause, old, new, changed_nik, changed, time):
            result.records.append(OutboundRecord(t.updates, new.member_key.encode(), to_canonical_json(event), time))
            result.events += 1
        link_nik = link.master_nik if new.decision is not MemberDecision.NOT_LINKED else None
        result.states[state.member_key] = dataclasses.replace(
            state,
            decision=new.decision.value,
            link_nik=link_nik,
            member_json=new_json,
            master_kk=link.master_kk_number,
            master_dead=link.master_deceased,
            blocking_keys=link.blocking_keys or state.blocking_keys,
        )


def _matches(state: MemberState, probe: Probe) -> bool:
    if state.link_nik is not None and state.link_nik in probe.niks:
        return True
    if state.decision == MemberDecision.LINKED.value:
        return False
    q = state.query
    if bool(q.nik) and q.nik in probe.niks:
        return True
    if state.blocking_keys is not None:
        return not probe.blocking_keys.isdisjoint(state.blocking_keys)
    # a state stored before the keys were: the old probe (birth date, normalised name)
    return (bool(q.birth_date) and q.birth_date in probe.birth_dates) or name_key(q.full_name) in probe.name_keys


def change_time(change: Change) -> dt.datetime:
    """The event time of the records a change causes (`integration.updates.change_event_time`)."""
    return change_event_time(change.time, change.cause)
