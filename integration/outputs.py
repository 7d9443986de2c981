"""Builders of the outbound records: a linked family -> member records, review tasks, the family record.

Pure functions of their inputs (submission, the engine's links, person ids): no clock, no randomness,
floats rounded, so the same submission always yields byte-identical values. Their `event_time` is the
submission's `enumerated_at`, part of the payload.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
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
from contracts.member import Member
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


def _explanation(link: MemberLink) -> dict[str, float]:
    return {name: round(float(w), _DIGITS) for name, w in sorted(link.explanation.items())}


def decision_of(link: MemberLink) -> MemberDecision:
    """auto_link or clerical_link with a candidate -> linked; review -> pending_review; else not_linked."""
    if link.band in ("auto_link", "clerical_link") and link.master_nik:
        return MemberDecision.LINKED
    if link.band == "review" and link.master_nik:
        return MemberDecision.PENDING_REVIEW
    return MemberDecision.NOT_LINKED


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
    refs: list[FamilyMemberRef] = []
    minted: dict[str, str] = {}
    master_kks: set[str] = set()
    not_in_master: list[int] = []
    deceased: list[int] = []
    kk_mismatch = False
    for member in sorted(submission.members, key=lambda m: m.serial):
        key = submission.member_key(member)
        link = links[key]
        decision = decision_of(link)
        if decision is MemberDecision.LINKED:
            assert link.master_nik is not None  # guaranteed by decision_of
            person_id, kind = ids.for_master(link.master_nik), PersonIdKind.MASTER
            kk_mismatch |= _kk_differs(submission.kk_number, link.master_kk_number)
            if link.master_kk_number:
                master_kks.add(link.master_kk_number)
            if link.master_deceased and member.presence in _PRESENT:
                deceased.append(member.serial)
        else:
            person_id = known_minted.get(key) or ids.mint(key)
            kind = PersonIdKind.MINTED
            minted[key] = person_id
            if decision is MemberDecision.NOT_LINKED:
                not_in_master.append(member.serial)
        members.append(
            _member_record(submission, member, key, link, decision, person_id, kind, model_version)
        )
        refs.append(
            FamilyMemberRef(serial=member.serial, member_key=key, person_id=person_id, decision=decision)
        )
        if decision is MemberDecision.PENDING_REVIEW:
            reviews.append(_review_task(submission, key, link, ids, model_version))
    family = IntegratedFamily(
        family_key=submission.family_key.key,
        submission_id=submission.submission_id,
        revision=submission.revision,
        kk_number=submission.kk_number,
        master_kk_numbers=sorted(master_kks),
        members=refs,
        flags=FamilyFlags(
            kk_mismatch=kk_mismatch,
            members_not_in_master=bool(not_in_master),
            deceased_in_master_present_in_survey=bool(deceased),
        ),
        not_in_master_serials=not_in_master,
        deceased_in_master_serials=deceased,
        model_version=model_version,
        event_time=event_time_of(submission),
    )
    return FamilyOutputs(members=members, reviews=reviews, family=family, minted=minted)


def _kk_differs(survey_kk: str | None, master_kk: str | None) -> bool:
    # Only a KK both sides know can disagree; a missing KK is not a mismatch.
    return bool(survey_kk and master_kk and survey_kk != master_kk)


def _member_record(
    submission: FamilySubmission,
    member: Member,
    key: str,
    link: MemberLink,
    decision: MemberDecision,
    person_id: str,
    kind: PersonIdKind,
    model_version: str,
) -> LinkedMember:
    linked = decision is MemberDecision.LINKED
    return LinkedMember(
        member_key=key,
        family_key=submission.family_key.key,
        serial=member.serial,
        submission_id=submission.submission_id,
        revision=submission.revision,
        decision=decision,
        band=LinkBand(link.band),
        probability=_round(link.probability),
        match_weight=_round(link.match_weight),
        runner_up_weight=_round(link.runner_up_weight),
        explanation=_explanation(link),
        matched_nik=link.master_nik if linked else None,
        person_id=person_id,
        person_id_kind=kind,
        sectoral=SectoralMatches(
            dtks_id=link.dtks_id if linked else None, bpjs_id=link.bpjs_id if linked else None,
            dtks_decile=link.dtks_decile if linked else None,
        ),
        model_version=model_version,
        event_time=event_time_of(submission),
    )


def _review_task(
    submission: FamilySubmission, key: str, link: MemberLink, ids: PersonIds, model_version: str
) -> ReviewTask:
    return ReviewTask(
        # One task per member and revision: a re-delivery yields the same task id, a new revision a new one.
        task_id=f"{key}/r{submission.revision}",
        member_key=key,
        submission_id=submission.submission_id,
        revision=submission.revision,
        candidate_nik=link.master_nik,
        candidate_person_id=ids.for_master(link.master_nik) if link.master_nik else None,
        probability=_round(link.probability),
        match_weight=_round(link.match_weight),
        runner_up_weight=_round(link.runner_up_weight),
        explanation=_explanation(link),
        model_version=model_version,
        candidates=[
            ReviewCandidate(
                rank=rank, nik=c.master_nik, person_id=ids.for_master(c.master_nik),
                probability=_round(c.probability), match_weight=_round(c.match_weight),
                explanation={name: round(float(w), _DIGITS) for name, w in sorted(c.explanation.items())},
            )
            for rank, c in enumerate(link.candidates, start=1)
        ],  # fmt: skip
        # the candidate's DTKS decile: the queue puts families whose aid depends on the link first
        dtks_decile=link.dtks_decile,
        event_time=event_time_of(submission),
    )
