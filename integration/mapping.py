"""Contracts -> the engine's records: the ONE place where wire fields become linkage fields.

The engine never sees a schema version or a questionnaire code: sex becomes `M`/`F`, the birth date an
ISO string (only when all parts are known), and the BPS village code of the family key is translated to
the Kemendagri code through the crosswalk when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping

from contracts.codes import Sex
from contracts.member import Member
from contracts.submission import FamilySubmission
from integration.port import MemberQuery
from linkage.normalise.address import household_address


def member_query(
    submission: FamilySubmission, member: Member, village_crosswalk: Mapping[str, str] | None = None
) -> MemberQuery:
    """The engine's view of one member, with the family context used for disambiguation."""
    bps_village = submission.family_key.bps_village_code
    full = member.birth_date.full_date
    return MemberQuery(
        record_id=submission.member_key(member),
        nik=member.nik or "",
        kk_number=submission.kk_number or "",
        full_name=member.name,
        sex={Sex.MALE: "M", Sex.FEMALE: "F"}.get(member.sex, "") if member.sex is not None else "",
        birth_date=full.isoformat() if full is not None else "",
        birth_year=member.birth_date.year,
        age=member.age,
        reference_year=submission.enumerated_at.year,
        village_code=(village_crosswalk or {}).get(bps_village, ""),
        address=household_address(submission.address.street, submission.address.rt, submission.address.rw) or "",
        family_key=submission.family_key.key,
        head_name=submission.head_name,
        relationship=int(member.relationship),
        submission_id=submission.submission_id,
    )


def family_queries(
    submission: FamilySubmission, village_crosswalk: Mapping[str, str] | None = None
) -> list[MemberQuery]:
    """One query per member, in serial order."""
    members = sorted(submission.members, key=lambda m: m.serial)
    return [member_query(submission, m, village_crosswalk) for m in members]
