"""Applying validated changes: master upsert, re-link the affected members, link updates (pure w.r.t. Kafka).

Per change, in order: write it to the engine's master (`MasterWriter`, incremental), find the members
it may affect in the link store (`MemberIndex`: members linked or pending review to its NIK, members
without a link sharing its NIK or one of its blocking-key hashes, i.e. every such member the engine's
blocking would pair with the record), re-link them with the engine, and compare each member's record
before and after. A changed record is re-emitted on `linkage.members.v1` (same key), a member newly in
the review band gets a review task, and every consequence becomes a `linkage.updates.v1` event (see
`contracts/linkage_updates.py` for the event rules). Members changed by an earlier change of the same
batch are seen in their new state. The store is only read here; the caller saves `UpdateResult.states`
after the broker acknowledged every record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contracts.linkage_outputs import (
    IntegratedFamily,
    LinkBand,
    LinkedMember,
    MemberDecision,
    PersonIdKind,
    ReviewTask,
    SectoralMatches,
    to_canonical_json,
)
from contracts.linkage_updates import (
    AnyLinkageUpdate,
    LinkChanged,
    LinkCreated,
    Merged,
    PersonDied,
    PersonMoved,
    Split,
    UpdateCause,
    UpdateEventType,
    WelfareChanged,
    summary_of,
    update_event_id,
)
from integration.clerical import StickyDecision, override_link
from integration.ids import PersonIds
from integration.outputs import decision_of
from integration.port import MemberLink, MemberLinker
from services.linker.pipeline import OutboundRecord
from services.updates.changes import Change
from services.updates.family import rebuilt_family
from services.updates.master import MasterPerson, MasterWriter
from services.updates.member_state import MemberState, Probe, name_key

_DIGITS = 6  # as the linker's outputs round (integration/outputs.py)


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


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), _DIGITS)


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
            family = rebuilt_family(IntegratedFamily.model_validate_json(old_json), states)
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
                niks=frozenset({p.nik}), blocking_keys=frozenset(self._linker.master_keys(p)),
                birth_dates=frozenset({p.birth_date}), name_keys=frozenset({name_key(p.full_name)}),
            )  # fmt: skip
        if change.sectoral is not None:
            f = change.sectoral
            self._linker.set_sectoral(f.source, f.nik, f.sectoral_id, f.decile)
            return Probe(niks=frozenset({f.nik}))
        return Probe()  # a sectoral row without a NIK links to nobody by NIK

    def _member(self, change: Change, state: MemberState, link: MemberLink, result: UpdateResult) -> None:
        old = LinkedMember.model_validate_json(state.member_json)
        time = change_time(change)
        # Compared without the event time: a record that changes nothing else is not re-published.
        fresh = self._relinked(old, link).model_copy(update={"event_time": old.event_time})
        changed = to_canonical_json(fresh) != state.member_json
        new = fresh.model_copy(update={"event_time": time}) if changed else fresh
        new_json = to_canonical_json(new) if changed else state.member_json
        t = self._topics
        # The family record may change with the member's state alone (master KK, death): any change counts.
        result.family_times[new.family_key] = max(time, result.family_times.get(new.family_key, time))
        if changed:
            result.records.append(OutboundRecord(t.members, new.member_key.encode(), new_json, time))
        if new.decision is MemberDecision.PENDING_REVIEW and old.decision is not MemberDecision.PENDING_REVIEW:
            task = self._review_task(new, link, change.cause, time)
            result.records.append(OutboundRecord(t.review, new.member_key.encode(), to_canonical_json(task), time))
        changed_nik = change.person.nik if change.person else change.sectoral.nik if change.sectoral else None
        for event in _events(change.cause, old, new, changed_nik, changed, time):
            result.records.append(OutboundRecord(t.updates, new.member_key.encode(), to_canonical_json(event), time))
            result.events += 1
        link_nik = link.master_nik if new.decision is not MemberDecision.NOT_LINKED else None
        result.states[state.member_key] = dataclasses.replace(
            state, decision=new.decision.value, link_nik=link_nik, member_json=new_json,
            master_kk=link.master_kk_number, master_dead=link.master_deceased,
            blocking_keys=link.blocking_keys or state.blocking_keys,
        )  # fmt: skip

    def _relinked(self, old: LinkedMember, link: MemberLink) -> LinkedMember:
        decision = decision_of(link)
        linked = decision is MemberDecision.LINKED
        if linked:
            assert link.master_nik is not None  # guaranteed by decision_of
            person_id, kind = self._ids.for_master(link.master_nik), PersonIdKind.MASTER
        elif old.person_id_kind is PersonIdKind.MINTED:
            person_id, kind = old.person_id, PersonIdKind.MINTED
        else:
            person_id, kind = self._ids.mint(old.member_key), PersonIdKind.MINTED
        return LinkedMember(
            member_key=old.member_key, family_key=old.family_key, serial=old.serial,
            submission_id=old.submission_id, revision=old.revision, decision=decision,
            band=LinkBand(link.band), probability=_round(link.probability),
            match_weight=_round(link.match_weight), runner_up_weight=_round(link.runner_up_weight),
            explanation={k: round(float(w), _DIGITS) for k, w in sorted(link.explanation.items())},
            matched_nik=link.master_nik if linked else None, person_id=person_id, person_id_kind=kind,
            sectoral=SectoralMatches(dtks_id=link.dtks_id if linked else None,
                                     bpjs_id=link.bpjs_id if linked else None,
                                     dtks_decile=link.dtks_decile if linked else None),
            model_version=self._linker.model_version,
        )  # fmt: skip

    def _review_task(
        self, member: LinkedMember, link: MemberLink, cause: UpdateCause, time: dt.datetime
    ) -> ReviewTask:
        return ReviewTask(
            # One task per member, revision and change: re-processing the change yields the same id.
            task_id=f"{member.member_key}/r{member.revision}/{cause.change_id}",
            member_key=member.member_key, submission_id=member.submission_id, revision=member.revision,
            candidate_nik=link.master_nik,
            candidate_person_id=self._ids.for_master(link.master_nik) if link.master_nik else None,
            probability=member.probability, match_weight=member.match_weight,
            runner_up_weight=member.runner_up_weight, explanation=member.explanation,
            model_version=member.model_version, event_time=time,
        )  # fmt: skip


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
    """The event time of the records a change causes (`Change.time`). A change journalled before the
    time was kept has none: its effective date (midnight UTC), else the Unix epoch."""
    if change.time is not None:
        return change.time.astimezone(dt.UTC)
    day = change.cause.effective_date or dt.date(1970, 1, 1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _events(
    cause: UpdateCause, old: LinkedMember, new: LinkedMember, changed_nik: str | None, record_changed: bool,
    time: dt.datetime,
) -> list[AnyLinkageUpdate]:
    """The update events of one re-linked member (the rules of contracts/linkage_updates.py)."""
    kinds: list[UpdateEventType] = []
    before_master = old.person_id_kind is PersonIdKind.MASTER
    after_master = new.person_id_kind is PersonIdKind.MASTER
    if old.person_id != new.person_id:
        if after_master and not before_master:
            kinds = [UpdateEventType.LINK_CREATED, UpdateEventType.MERGED]
        elif before_master and not after_master:
            kinds = [UpdateEventType.SPLIT]
        else:
            kinds = [UpdateEventType.LINK_CHANGED]
    else:
        linked_to_change = new.matched_nik is not None and new.matched_nik == changed_nik
        if linked_to_change and cause.change == "died":
            kinds = [UpdateEventType.PERSON_DIED]
        elif linked_to_change and cause.change == "moved":
            kinds = [UpdateEventType.MOVED]
        elif (record_changed and _changed_besides_decile(old, new)) or (
            linked_to_change and cause.change in ("corrected", "kk_changed")
        ):
            kinds = [UpdateEventType.LINK_CHANGED]
        if old.sectoral.dtks_decile != new.sectoral.dtks_decile:
            # The same person's welfare decile changed (a DTKS row with a new `desil`, or the person
            # entered or left DTKS): its own event, besides any link change.
            kinds.append(UpdateEventType.WELFARE_CHANGED)
    return [_event(kind, cause, old, new, time) for kind in kinds]


def _changed_besides_decile(old: LinkedMember, new: LinkedMember) -> bool:
    """Whether the record changed in anything but the DTKS decile (that alone is `welfare_changed`)."""
    same_decile = old.sectoral.model_copy(update={"dtks_decile": new.sectoral.dtks_decile})
    return old.model_copy(update={"sectoral": same_decile, "event_time": new.event_time}) != new


def _event(
    kind: UpdateEventType, cause: UpdateCause, old: LinkedMember, new: LinkedMember, time: dt.datetime
) -> AnyLinkageUpdate:
    common = {
        "event_id": update_event_id(cause.change_id, new.member_key, kind),
        "member_key": new.member_key, "family_key": new.family_key, "cause": cause,
        "before": summary_of(old), "after": summary_of(new), "member": new, "event_time": time,
    }  # fmt: skip
    ids = {"old_person_id": old.person_id, "new_person_id": new.person_id}
    match kind:
        case UpdateEventType.LINK_CREATED:
            return LinkCreated.model_validate(common)
        case UpdateEventType.MERGED:
            return Merged.model_validate({**common, **ids})
        case UpdateEventType.SPLIT:
            return Split.model_validate({**common, **ids})
        case UpdateEventType.PERSON_DIED:
            return PersonDied.model_validate(common)
        case UpdateEventType.MOVED:
            return PersonMoved.model_validate(common)
        case UpdateEventType.WELFARE_CHANGED:
            deciles = {"decile_before": old.sectoral.dtks_decile, "decile_after": new.sectoral.dtks_decile}
            return WelfareChanged.model_validate({**common, **deciles})
        case _:
            return LinkChanged.model_validate(common)
