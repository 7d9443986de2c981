"""Field feedback rules (integration/feedback.py): exact items for each kind, keeping and closing."""

from __future__ import annotations

import json

from contracts.decode import decode_family_submission
from contracts.feedback import FIELD_FEEDBACK_ADAPTER, FeedbackKind, FeedbackStatus, FieldFeedback
from contracts.linkage_outputs import to_canonical_json
from contracts.submission import FamilySubmission
from integration.feedback import (
    Duplicate,
    OpenItem,
    derive_feedback,
    find_duplicate,
    message_for,
    present_linked_niks,
)
from integration.port import Band, MemberLink
from tests.support.linker import FAMILY_KEY, member_payload, nik_for, submission_payload

FK = FAMILY_KEY
TEAM = "team-3603-a"
SURVEY_KK = "3603121705150003"
OTHER_KK = "3603121705150004"
A, B, C = nik_for(2), nik_for(3, female=True), nik_for(4)


def _sub(members: list[dict[str, object]], revision: int = 1, kk: str | None = SURVEY_KK) -> FamilySubmission:
    doc = submission_payload(members, revision=revision, kk_number=kk)
    doc["member_count"] = sum(1 for m in members if m["presence"] in (1, 4))
    return decode_family_submission(json.dumps(doc).encode(), key=FK.encode())


def _link(
    serial: int,
    band: Band,
    nik: str | None,
    *,
    in_master: bool | None = None,
    kk: str | None = SURVEY_KK,
    dead: bool = False,
) -> MemberLink:
    return MemberLink(
        f"{FK}-{serial:02d}",
        band,
        nik,
        0.9,
        5.0,
        None,
        master_kk_number=kk if nik else None,
        master_deceased=dead,
        query_nik_in_master=in_master,
    )


def _opened(kind: FeedbackKind, serial: int | None, revision: int = 1) -> FieldFeedback:
    suffix = "" if serial is None else f"/{serial:02d}"
    return FieldFeedback(
        item_id=f"{FK}/{kind.value}{suffix}",
        team=TEAM,
        family_key=FK,
        member_key=None if serial is None else f"{FK}-{serial:02d}",
        serial=serial,
        kind=kind,
        status=FeedbackStatus.OPEN,
        raised_revision=revision,
        raised_submission_id=f"S-{FK}-r{revision}",
        message=message_for(kind, serial),
    )


def _one_member(
    nik: str | None, link: MemberLink, presence: int = 1, kk: str | None = SURVEY_KK
) -> list[FieldFeedback]:
    sub = _sub([member_payload(1, "Ahmad Fauzi", nik, presence=presence)], kk=kk)
    return derive_feedback(sub, TEAM, {f"{FK}-01": link}, []).records


def test_a_nik_not_in_the_master_raises_exactly_one_item_with_its_wire_form() -> None:
    records = _one_member(A, _link(1, "no_match", None, in_master=False))
    assert records == [_opened(FeedbackKind.NIK_NOT_IN_MASTER, 1)]
    assert json.loads(to_canonical_json(records[0])) == {
        "schema_version": "1",
        "item_id": f"{FK}/nik_not_in_master/01",
        "team": TEAM,
        "family_key": FK,
        "member_key": f"{FK}-01",
        "serial": 1,
        "kind": "nik_not_in_master",
        "status": "open",
        "raised_revision": 1,
        "raised_submission_id": f"S-{FK}-r1",
        "closed_revision": None,
        "closed_submission_id": None,
        "message": "Member 01: the NIK recorded is not in the Dukcapil population data. Check it against "
        "the member's KTP or the family card (KK).",
    }
    # Not also "member not found": the NIK item already tells the field what to check.


def test_a_nik_held_by_another_person_when_linked_elsewhere_or_holder_differs() -> None:
    linked_elsewhere = _one_member(A, _link(1, "auto_link", B, in_master=True))
    holder_differs = _one_member(A, _link(1, "no_match", None, in_master=True))
    holder_in_review = _one_member(A, _link(1, "review", A, in_master=True))
    expected = [_opened(FeedbackKind.NIK_OF_ANOTHER_PERSON, 1)]
    assert (linked_elsewhere, holder_differs, holder_in_review) == (expected, expected, expected)
    # Linked to its own NIK: nothing to fix.
    assert _one_member(A, _link(1, "auto_link", A, in_master=True)) == []
    # The NIK was not looked up (None): no NIK item either way.
    assert _one_member(A, _link(1, "auto_link", B, in_master=None)) == []


def test_a_present_member_dead_in_the_master_but_not_one_reported_dead() -> None:
    assert _one_member(A, _link(1, "auto_link", A, in_master=True, dead=True)) == [
        _opened(FeedbackKind.DEAD_IN_MASTER, 1)
    ]
    assert _one_member(A, _link(1, "auto_link", A, in_master=True, dead=True), presence=2) == []


def test_kk_mismatch_only_when_both_sides_know_a_kk() -> None:
    assert _one_member(A, _link(1, "auto_link", A, in_master=True, kk=OTHER_KK)) == [
        _opened(FeedbackKind.KK_MISMATCH, 1)
    ]
    assert _one_member(A, _link(1, "auto_link", A, in_master=True, kk=OTHER_KK), kk=None) == []
    assert _one_member(A, _link(1, "auto_link", A, in_master=True, kk=None)) == []


def test_member_not_found_needs_a_present_member_without_nik_and_without_any_candidate() -> None:
    assert _one_member(None, _link(1, "no_match", None)) == [_opened(FeedbackKind.MEMBER_NOT_FOUND, 1)]
    assert _one_member(None, _link(1, "no_match", None), presence=3) == []  # moved out
    assert _one_member(None, _link(1, "review", B)) == []  # a candidate waits for a reviewer


def test_duplicate_family_names_the_other_family_only_for_the_same_team() -> None:
    sub = _sub([member_payload(1, "Ahmad Fauzi", A)])
    links = {f"{FK}-01": _link(1, "auto_link", A, in_master=True)}
    other = "3603010001000100002001"
    same = derive_feedback(sub, TEAM, links, [], Duplicate(other, same_team=True)).records
    foreign = derive_feedback(sub, TEAM, links, [], Duplicate(other, same_team=False)).records
    expected = _opened(FeedbackKind.DUPLICATE_FAMILY, None)
    assert foreign == [expected]
    assert same == [
        expected.model_copy(
            update={"other_family_key": other, "message": message_for(FeedbackKind.DUPLICATE_FAMILY, None, other)}
        )
    ]
    assert other in same[0].message and other not in foreign[0].message
    assert same[0].item_id == f"{FK}/duplicate_family" and same[0].member_key is None


def test_find_duplicate_needs_two_shared_members_and_half_of_the_family() -> None:
    other, third = "3603010001000100002001", "3603010001000100003001"
    assert find_duplicate(FK, frozenset({A, B, C}), {other: frozenset({A, B})}) == other
    assert find_duplicate(FK, frozenset({A, B, C}), {other: frozenset({A})}) is None
    assert find_duplicate(FK, frozenset({A}), {other: frozenset({A})}) is None  # one person may move
    assert find_duplicate(FK, frozenset({A, B}), {FK: frozenset({A, B})}) is None  # itself
    # The most shared wins; a tie goes to the lowest key.
    assert find_duplicate(FK, frozenset({A, B, C}), {third: frozenset({A, B, C}), other: frozenset({A, B})}) == third
    assert find_duplicate(FK, frozenset({A, B}), {third: frozenset({A, B}), other: frozenset({A, B})}) == other


def test_present_linked_niks_are_the_present_members_linked_by_the_engine() -> None:
    sub = _sub(
        [member_payload(1, "Ahmad", A), member_payload(2, "Siti", B, presence=3), member_payload(3, "Candra", C)]
    )
    links = {
        f"{FK}-01": _link(1, "auto_link", A),
        f"{FK}-02": _link(2, "auto_link", B),
        f"{FK}-03": _link(3, "review", C),
    }
    assert present_linked_niks(sub, links) == frozenset({A})


def test_a_corrected_revision_closes_what_it_fixed_and_keeps_what_it_did_not() -> None:
    first = _sub([member_payload(1, "Ahmad Fauzi", A), member_payload(2, "Budi", None, relationship=3)])
    links1 = {f"{FK}-01": _link(1, "no_match", None, in_master=False), f"{FK}-02": _link(2, "no_match", None)}
    out1 = derive_feedback(first, TEAM, links1, [])
    assert out1.records == [_opened(FeedbackKind.MEMBER_NOT_FOUND, 2), _opened(FeedbackKind.NIK_NOT_IN_MASTER, 1)]
    assert out1.open_items == (
        OpenItem(FeedbackKind.MEMBER_NOT_FOUND, 2, 1, f"S-{FK}-r1"),
        OpenItem(FeedbackKind.NIK_NOT_IN_MASTER, 1, 1, f"S-{FK}-r1"),
    )
    # Revision 2 corrects member 1's NIK; member 2 is still not found.
    second = _sub([member_payload(1, "Ahmad Fauzi", B), member_payload(2, "Budi", None, relationship=3)], revision=2)
    links2 = {f"{FK}-01": _link(1, "auto_link", B, in_master=True), f"{FK}-02": _link(2, "no_match", None)}
    stored = [OpenItem.decode(item.encode()) for item in out1.open_items]  # through the store's encoding
    out2 = derive_feedback(second, TEAM, links2, stored)
    closed = _opened(FeedbackKind.NIK_NOT_IN_MASTER, 1).model_copy(
        update={"status": FeedbackStatus.CLOSED, "closed_revision": 2, "closed_submission_id": f"S-{FK}-r2"}
    )
    assert out2.records == [closed]
    assert out2.open_items == (OpenItem(FeedbackKind.MEMBER_NOT_FOUND, 2, 1, f"S-{FK}-r1"),)
    # The same revision again (a re-delivery after the store kept it): nothing new.
    assert derive_feedback(second, TEAM, links2, out2.open_items).records == []
    # Every record is valid against the contract's parser (the JSON Schema test covers the schema).
    for record in [*out1.records, *out2.records]:
        assert FIELD_FEEDBACK_ADAPTER.validate_json(to_canonical_json(record)) == record


def test_a_dropped_member_closes_its_items() -> None:
    previous = [OpenItem(FeedbackKind.DEAD_IN_MASTER, 2, 3, "S-x-r3")]
    sub = _sub([member_payload(1, "Ahmad Fauzi", A)], revision=4)
    out = derive_feedback(sub, TEAM, {f"{FK}-01": _link(1, "auto_link", A, in_master=True)}, previous)
    got = [(r.item_id, r.status, r.raised_revision, r.raised_submission_id, r.closed_revision) for r in out.records]
    assert got == [(f"{FK}/dead_in_master/02", FeedbackStatus.CLOSED, 3, "S-x-r3", 4)]
    assert out.open_items == ()
