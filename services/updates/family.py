"""Rebuilding a family's integrated record after some of its members were re-linked.

The same rules as the linker's family builder (`integration/outputs.py`), applied to the stored
member states: person ids and decisions of the members, the linked master persons' KK numbers, the
flags `kk_mismatch`, `members_not_in_master` and `deceased_in_master_present_in_survey` and their
serials. Family-level fields (survey KK, submission, revision, model version, event time) stay as
published; the caller sets the event time of a record that changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.linkage_outputs import FamilyFlags, FamilyMemberRef, IntegratedFamily, LinkedMember, MemberDecision
from services.updates.member_state import MemberState


def rebuilt_family(family: IntegratedFamily, states: Iterable[MemberState]) -> IntegratedFamily:
    """`family` with its members' current links (`states`: the family's stored members, updated)."""
    by_key = {s.member_key: s for s in states}
    refs: list[FamilyMemberRef] = []
    master_kks: set[str] = set()
    not_in_master: list[int] = []
    deceased: list[int] = []
    kk_mismatch = False
    for ref in family.members:
        state = by_key.get(ref.member_key)
        if state is None:  # not stored (cannot happen for a family written by this linker): keep it
            refs.append(ref)
            continue
        member = LinkedMember.model_validate_json(state.member_json)
        refs.append(FamilyMemberRef(serial=ref.serial, member_key=ref.member_key, person_id=member.person_id,
                                    decision=member.decision))  # fmt: skip
        if member.decision is MemberDecision.LINKED:
            kk_mismatch |= bool(family.kk_number and state.master_kk and family.kk_number != state.master_kk)
            if state.master_kk:
                master_kks.add(state.master_kk)
            if state.master_dead and state.present:
                deceased.append(ref.serial)
        elif member.decision is MemberDecision.NOT_LINKED:
            not_in_master.append(ref.serial)
    return IntegratedFamily(
        family_key=family.family_key, submission_id=family.submission_id, revision=family.revision,
        kk_number=family.kk_number, master_kk_numbers=sorted(master_kks), members=refs,
        flags=FamilyFlags(kk_mismatch=kk_mismatch, members_not_in_master=bool(not_in_master),
                          deceased_in_master_present_in_survey=bool(deceased)),
        not_in_master_serials=not_in_master, deceased_in_master_serials=deceased,
        model_version=family.model_version, event_time=family.event_time,
    )  # fmt: skip
