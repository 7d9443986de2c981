"""A survey member -> the engine's linkage record: the ONE mapping, for the streaming linker and the batch
commands alike (docs/data-model.md, "The linkage record").

The engine never sees a schema version or a questionnaire code: sex becomes `M`/`F`, the birth date an
ISO string (only when all parts are known), and the BPS village code of the family key is translated to
the Kemendagri code through the crosswalk when one is given. Anything unknown is None (the contracts have
already read the questionnaire's 98 / 9998 and blank strings as null). One age rule: a member without a
birth year gets the visit's year (`enumerated_at`) minus the age in completed years (`birth_year_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from contracts.codes import Sex
from contracts.member import Member
from contracts.submission import FamilySubmission
from integration.port import MemberQuery
from linkage.normalise.address import household_address

_SEX = {Sex.MALE: "M", Sex.FEMALE: "F"}

#: The engine's member columns (`linkage.records.MEMBER_SCHEMA`), in order.
RECORD_FIELDS: tuple[str, ...] = (
    "record_id",
    "nik",
    "kk_number",
    "full_name",
    "sex",
    "birth_date",
    "birth_year",
    "village_code",
    "address",
    "family_key",
    "head_name",
    "relationship",
    "submission_id",
)


def member_query(
    submission: FamilySubmission,
    member: Member,
    village_crosswalk: Mapping[str, str] | None = None,
    *,
    record_id: str | None = None,
) -> MemberQuery:
    """The engine's view of one member, with the family context used for disambiguation.

    `record_id` defaults to the member key (`<family key>-<serial>`, the streaming linker's id); the
    batch commands, which link every revision of a world's submissions, pass `<submission id>/<serial>`.
    """
    full = member.birth_date.full_date
    address = submission.address
    return MemberQuery(
        record_id=submission.member_key(member) if record_id is None else record_id,
        nik=member.nik,
        kk_number=submission.kk_number,
        full_name=member.name,
        sex=None if member.sex is None else _SEX.get(member.sex),
        birth_date=None if full is None else full.isoformat(),
        birth_year=member.birth_date.year,
        age=member.age,
        reference_year=submission.enumerated_at.year,
        village_code=(village_crosswalk or {}).get(submission.family_key.bps_village_code),
        address=household_address(address.street, address.rt, address.rw),
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


def birth_year_of(query: MemberQuery) -> int | None:
    """The age rule: the written birth year, else the visit's year minus the age (None: neither known)."""
    if query.birth_year is not None:
        return query.birth_year
    if query.age is not None:
        return query.reference_year - query.age
    return None


def record_columns(queries: Sequence[MemberQuery]) -> dict[str, list[Any]]:
    """The queries as the engine's member columns (`RECORD_FIELDS`, for `linkage.records.member_table`):
    column lists, not one dict per member."""
    columns: dict[str, list[Any]] = {f: [getattr(q, f) for q in queries] for f in RECORD_FIELDS}
    columns["birth_year"] = [birth_year_of(q) for q in queries]
    return columns


def submission_queries(
    submissions: Iterable[FamilySubmission], village_crosswalk: Mapping[str, str] | None = None
) -> list[MemberQuery]:
    """The batch commands' records: every member of every submission (all revisions), in file and
    listing order, with the record id `<submission id>/<serial>` (the truth file's key)."""
    return [
        member_query(sub, m, village_crosswalk, record_id=f"{sub.submission_id}/{m.serial}")
        for sub in submissions
        for m in sub.members
    ]
