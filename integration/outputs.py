"""The outbound records of a link: member records, review tasks and the integrated family record.

ONE set of rules for every path that publishes them: the linker (a new family revision,
`build_family_outputs`), a master change re-linking stored members (`integration/updates.py`,
`rebuilt_family`) and a clerical decision (`services/linker/updates/decisions.py`). Pure functions of their
inputs (the links, person ids, the stored records): no clock, no randomness, floats rounded, so the same
input always yields byte-identical values. A submission's records carry its `enumerated_at` as event
time, part of the payload.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contracts.codes import Presence
from contracts.linkage_outputs import (
    FamilyFlags,
    FamilyMemberRef,
    IntegratedFamily,
    LinkBand,
    LinkedMember,
    MemberDecision,
    PersonIdKind,
    ReviewCandidate,
    ReviewTask,
    SectoralMatches,
)
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from integration.port import MemberLink

# Enough digits to be useful, few enough that float noise in the last bits cannot change the bytes.
_DIGITS = 6
_PRESENT = (Presence.LIVES_HERE, Presence.NEW_MEMBER)


def event_time_of(submission: FamilySubmission) -> dt.datetime:
    """The event time of every record a submission produces: its enumeration time (`enumerated_at`), in UTC.

    Part of the payload, so re-processing or re-sending the same revision gives the same time.
    """
    return submission.enumerated_at.astimezone(dt.UTC)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), _DIGITS)


def _explanation(explanation: Mapping[str, float]) -> dict[str, float]:
    return {name: round(float(w), _DIGITS) for name, w in sorted(explanation.items())}


def decision_of(link: MemberLink) -> MemberDecision:
    """auto_link or clerical_link with a candidate -> linked; review -> pending_review; else not_linked."""
    if link.band in ("auto_link", "clerical_link") and link.master_nik:
        return MemberDecision.LINKED
    if link.band == "review" and link.master_nik:
        return MemberDecision.PENDING_REVIEW
    return MemberDecision.NOT_LINKED


@dataclass(frozen=True)
class MemberSlot:
    """Which member record a link is for: the member and the family revision it belongs to."""

    member_key: str
    family_key: str
    serial: int
    submission_id: str
    revision: int


def person_id_of(
    link: MemberLink, ids: PersonIds, member_key: str, minted: str | None = None
) -> tuple[str, PersonIdKind]:
    """A member's person id: its master person's when linked, else the id minted for it earlier
    (`minted`, kept in the link store) or a new one."""
    if decision_of(link) is MemberDecision.LINKED:
        assert link.master_nik is not None  # guaranteed by decision_of
        return ids.for_master(link.master_nik), PersonIdKind.MASTER
    return minted or ids.mint(member_key), PersonIdKind.MINTED


def member_record(
    slot: MemberSlot,
    link: MemberLink,
    person_id: str,
    kind: PersonIdKind,
    model_version: str,
    event_time: dt.datetime | None,
) -> LinkedMember:
    """The member record of one link; master facts only when it is linked."""
    decision = decision_of(link)
    linked = decision is MemberDecision.LINKED
    return LinkedMember(
        member_key=slot.member_key,
        family_key=slot.family_key,
        serial=slot.serial,
        submission_id=slot.submission_id,
        revision=slot.revision,
        decision=decision,
        band=LinkBand(link.band),
        probability=_round(link.probability),
        match_weight=_round(link.match_weight),
        runner_up_weight=_round(link.runner_up_weight),
        explanation=_explanation(link.explanation),
        matched_nik=link.master_nik if linked else None,
        person_id=person_id,
        person_id_kind=kind,
        sectoral=SectoralMatches(
            dtks_id=link.dtks_id if linked else None,
            bpjs_id=link.bpjs_id if linked else None,
            dtks_decile=link.dtks_decile if linked else None,
        ),
        model_version=model_version,
        event_time=event_time,
    )


def review_task(
    task_id: str,
    member_key: str,
    submission_id: str,
    revision: int,
    link: MemberLink,
    ids: PersonIds,
    model_version: str,
    event_time: dt.datetime,
    *,
    ranked: bool = True,
) -> ReviewTask:
    """The review task of a member in the review band. `ranked`: with the engine's ranked candidates and
    the DTKS decile (a master change's task carries neither: only the single candidate)."""
    return ReviewTask(
        task_id=task_id,
        member_key=member_key,
        submission_id=submission_id,
        revision=revision,
        candidate_nik=link.master_nik,
        candidate_person_id=ids.for_master(link.master_nik) if link.master_nik else None,
        probability=_round(link.probability),
        match_weight=_round(link.match_weight),
        runner_up_weight=_round(link.runner_up_weight),
        explanation=_explanation(link.explanation),
        model_version=model_version,
        candidates=[
            ReviewCandidate(
                rank=rank,
                nik=c.master_nik,
                person_id=ids.for_master(c.master_nik),
                probability=_round(c.probability),
                match_weight=_round(c.match_weight),
                explanation=_explanation(c.explanation),
            )
            for rank, c in enumerate(link.candidates, start=1)
        ]
        if ranked
        else [],
        # the candidate's DTKS decile: the queue puts families whose aid depends on the link first
        dtks_decile=link.dtks_decile if ranked else None,
        event_time=event_time,
    )


@dataclass(frozen=True)
class MasterFacts:
    """What the family flags need of one member: its linked master person's KK and death, and whether
    the member lives in the household (presence 1 or 4)."""

    master_kk: str | None
    master_deceased: bool
    present: bool


def family_record(
    family_key: str,
    submission_id: str,
    revision: int,
    kk_number: str | None,
    members: Sequence[tuple[FamilyMemberRef, MasterFacts | None]],
    model_version: str,
    event_time: dt.datetime | None,
) -> IntegratedFamily:
    """The integrated family record: its members (in the given order), the linked master persons' KK
    numbers and the flags `kk_mismatch`, `members_not_in_master` and `deceased_in_master_present_in_survey`
    with their serials. A member without facts (None) is listed but counts for no flag."""
    master_kks: set[str] = set()
    not_in_master: list[int] = []
    deceased: list[int] = []
    kk_mismatch = False
    for ref, facts in members:
        if facts is None:
            continue
        if ref.decision is MemberDecision.LINKED:
            kk_mismatch |= _kk_differs(kk_number, facts.master_kk)
            if facts.master_kk:
                master_kks.add(facts.master_kk)
            if facts.master_deceased and facts.present:
                deceased.append(ref.serial)
        elif ref.decision is MemberDecision.NOT_LINKED:
            not_in_master.append(ref.serial)
    return IntegratedFamily(
        family_key=family_key,
        submission_id=submission_id,
        revision=revision,
        kk_number=kk_number,
        master_kk_numbers=sorted(master_kks),
        members=[ref for ref, _ in members],
        flags=FamilyFlags(
            kk_mismatch=kk_mismatch,
            members_not_in_master=bool(not_in_master),
            deceased_in_master_present_in_survey=bool(deceased),
        ),
        not_in_master_serials=not_in_master,
        deceased_in_master_serials=deceased,
        model_version=model_version,
        event_time=event_time,
    )


def _kk_differs(survey_kk: str | None, master_kk: str | None) -> bool:
    # Only a KK both sides know can disagree; a missing KK is not a mismatch.
    return bool(survey_kk and master_kk and survey_kk != master_kk)


@dataclass(frozen=True)
class FamilyOutputs:
    """Everything one processed family produces."""

    members: list[LinkedMember]
    reviews: list[ReviewTask]
    family: IntegratedFamily
    minted: dict[str, str]


def build_family_outputs(
    submission: FamilySubmission,
    links: Mapping[str, MemberLink],
    ids: PersonIds,
    model_version: str,
    known_minted: Mapping[str, str],
) -> FamilyOutputs:
    """Member records, review tasks and the integrated family for one submission.

    `links` maps member key -> the engine's link; `known_minted` holds ids minted earlier (link store).
    """
    members: list[LinkedMember] = []
    reviews: list[ReviewTask] = []
    family_members: list[tuple[FamilyMemberRef, MasterFacts | None]] = []
    minted: dict[str, str] = {}
    time = event_time_of(submission)
    family_key = submission.family_key.key
    for member in sorted(submission.members, key=lambda m: m.serial):
        key = submission.member_key(member)
        link = links[key]
        decision = decision_of(link)
        person_id, kind = person_id_of(link, ids, key, known_minted.get(key))
        if kind is PersonIdKind.MINTED:
            minted[key] = person_id
        slot = MemberSlot(key, family_key, member.serial, submission.submission_id, submission.revision)
        members.append(member_record(slot, link, person_id, kind, model_version, time))
        ref = FamilyMemberRef(serial=member.serial, member_key=key, person_id=person_id, decision=decision)
        facts = MasterFacts(link.master_kk_number, link.master_deceased, member.presence in _PRESENT)
        family_members.append((ref, facts))
        if decision is MemberDecision.PENDING_REVIEW:
            # One task per member and revision: a re-delivery yields the same task id, a new revision a new one.
            task_id = f"{key}/r{submission.revision}"
            reviews.append(
                review_task(task_id, key, submission.submission_id, submission.revision, link, ids, model_version, time)
            )
    family = family_record(
        family_key,
        submission.submission_id,
        submission.revision,
        submission.kk_number,
        family_members,
        model_version,
        time,
    )
    return FamilyOutputs(members=members, reviews=reviews, family=family, minted=minted)


def rebuilt_family(
    family: IntegratedFamily, members: Mapping[str, tuple[LinkedMember, MasterFacts]]
) -> IntegratedFamily:
    """`family` as published, with its members' current records and master facts (`members`, by member
    key: the family's stored members after a re-link). Family-level fields (survey KK, submission,
    revision, model version, event time) stay as published; the caller sets the event time of a record
    that changed. A member not in `members` (not stored: cannot happen for a family written by the
    linker) keeps its entry and counts for no flag."""
    rebuilt: list[tuple[FamilyMemberRef, MasterFacts | None]] = []
    for ref in family.members:
        current = members.get(ref.member_key)
        if current is None:
            rebuilt.append((ref, None))
            continue
        record, facts = current
        rebuilt.append(
            (
                FamilyMemberRef(
                    serial=ref.serial, member_key=ref.member_key, person_id=record.person_id, decision=record.decision
                ),
                facts,
            )
        )
    return family_record(
        family.family_key,
        family.submission_id,
        family.revision,
        family.kk_number,
        rebuilt,
        family.model_version,
        family.event_time,
    )
