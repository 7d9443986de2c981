"""The owner rule and the revision-step rule: which submissions may revise their family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.dead_letter import DeadLetterReason
from contracts.decode import decode_family_submission
from contracts.submission import MAX_REVISION_STEP, FamilySubmission
from integration.ids import PersonIds
from services.kafka.record import KafkaRecord
from services.linker.admission import AdmissionRules, Refusal, admit, refusal_dead_letter, team_of
from services.linker.deadletter import OVERSIZED_PREFIX_BYTES
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import FamilyState, LinkStore
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch

OTHER_KEY = "3603010001000100002001"
RULES = AdmissionRules(supervisors=frozenset({"sup"}))


def _sub(revision: int, family_key: str = FAMILY_KEY, name: str = "Ahmad Fauzi") -> FamilySubmission:
    doc = submission_payload([member_payload(1, name, nik_for(2))], revision=revision, family_key=family_key)
    return decode_family_submission(json.dumps(doc).encode(), key=family_key.encode())


def _stored(revision: int, owner: str | None) -> dict[str, FamilyState]:
    return {FAMILY_KEY: FamilyState(revision, "s", (1,), owner)}


@pytest.mark.parametrize(
    ("stored", "revision", "team", "refused"),
    [
        ({}, 1, "a", None),  # a new family: its first team will own it
        ({}, MAX_REVISION_STEP, "a", None),  # the largest first step
        ({}, MAX_REVISION_STEP + 1, "a", DeadLetterReason.REVISION_JUMP),
        ({}, 2**31 - 1, "a", DeadLetterReason.REVISION_JUMP),  # would freeze the family for ever
        (_stored(3, "a"), 4, "a", None),
        (_stored(3, "a"), 3 + MAX_REVISION_STEP, "a", None),
        (_stored(3, "a"), 4 + MAX_REVISION_STEP, "a", DeadLetterReason.REVISION_JUMP),
        (_stored(3, "a"), 2, "a", None),  # stale: passes, the pipeline then drops it without output
        (_stored(3, "a"), 4, "b", DeadLetterReason.FOREIGN_TEAM),
        (_stored(3, "a"), 2**31 - 1, "b", DeadLetterReason.FOREIGN_TEAM),  # the owner rule comes first
        (_stored(3, "a"), 4, None, DeadLetterReason.FOREIGN_TEAM),  # no team header on an owned family
        (_stored(3, "a"), 4, "sup", None),  # a supervisor may revise any family
        (_stored(3, "a"), 4 + MAX_REVISION_STEP, "sup", DeadLetterReason.REVISION_JUMP),  # but not jump
        (_stored(3, None), 4, "b", None),  # stored before owners were kept: the next team claims it
    ],
)
def test_each_rule(
    stored: dict[str, FamilyState], revision: int, team: str | None, refused: DeadLetterReason | None
) -> None:
    out = admit([_sub(revision)], [team], stored, RULES)
    assert [r.reason for r in out.refused] == ([] if refused is None else [refused])
    assert out.accepted == ([0] if refused is None else [])


def test_rules_follow_arrival_order_within_a_batch() -> None:
    subs = [_sub(1), _sub(2), _sub(2 + MAX_REVISION_STEP), _sub(3), _sub(1, OTHER_KEY), _sub(2, OTHER_KEY)]
    teams = ["a", "b", "a", "a", "sup", "a"]
    out = admit(subs, teams, {}, RULES)
    assert out.accepted == [0, 3, 4]
    assert [(r.index, r.reason) for r in out.refused] == [
        (1, DeadLetterReason.FOREIGN_TEAM),  # team a owns the family since its revision 1 in this batch
        (2, DeadLetterReason.REVISION_JUMP),  # more than the step above revision 1
        (5, DeadLetterReason.FOREIGN_TEAM),  # the supervisor wrote OTHER_KEY's first revision: it owns it
    ]
    assert out.owners == {FAMILY_KEY: "a", OTHER_KEY: "sup"}


def test_detail_names_teams_and_revisions_only() -> None:
    out = admit([_sub(5, name="Siti Aminah")], ["b"], _stored(3, "a"), RULES)
    assert out.refused[0].detail == (
        "revision 5 from team 'b': the family belongs to team 'a', which wrote its first revision; only that "
        "team or a supervisor team may revise it"
    )
    jump = admit([_sub(200)], ["a"], _stored(3, "a"), RULES).refused[0]
    assert jump.detail == f"revision 200 is more than {MAX_REVISION_STEP} above the family's current revision 3"


@pytest.mark.parametrize(
    ("headers", "team"),
    [
        ([("regsosek-team", b"team-3603-a")], "team-3603-a"),
        ({"regsosek-team": b"team-3603-a"}, "team-3603-a"),
        ([("other", b"x")], None),
        (None, None),
        ([("regsosek-team", b"a"), ("regsosek-team", b"b")], None),  # two teams: neither
        ([("regsosek-team", b"")], None),
    ],
)
def test_team_of_headers(headers: object, team: str | None) -> None:
    assert team_of(headers) == team


def test_refusal_dead_letter_keeps_small_payloads_and_cuts_big_ones() -> None:
    source = KafkaRecord("subs", 2, 41, None, None, 1_700_000_000_000)
    refusal = Refusal(0, DeadLetterReason.FOREIGN_TEAM, "d")
    small = refusal_dead_letter(refusal, b"{}", FAMILY_KEY.encode(), source)
    assert (small.payload, small.detail, small.source_offset, small.key) == (b"{}", "d", 41, FAMILY_KEY)
    big = refusal_dead_letter(refusal, b"{" + b" " * 900_000 + b"}", FAMILY_KEY.encode(), source)
    assert len(big.payload) == OVERSIZED_PREFIX_BYTES
    assert big.detail.endswith("the original is at subs[2]@41")
    assert refusal_dead_letter(refusal, b"{}", None, source) == refusal_dead_letter(refusal, b"{}", None, source)


def _pipeline() -> SubmissionLinker:
    fake = FakeMemberLinker.of([FakeMasterPerson(nik_for(2), "Ahmad Fauzi", "3603121705150003")])
    return SubmissionLinker(fake, PersonIds(b"k"), OutputTopics("m", "f", "r"), rules=RULES)


def test_a_refused_latest_revision_leaves_the_owners_one_linked(tmp_path: Path) -> None:
    store = LinkStore(tmp_path / "links.duckdb")
    store.apply(link_batch(_pipeline(), store, [_sub(1)], ["a"]).update)
    # One batch: the owner's revision 2, then another team's huge one (prelink links that one first).
    batch, teams = [_sub(2), _sub(2**31 - 1, name="Budi Santoso")], ["a", "b"]
    result = link_batch(_pipeline(), store, batch, teams)
    assert [(r.index, r.reason) for r in result.refused] == [(1, DeadLetterReason.FOREIGN_TEAM)]
    assert (result.families_linked, result.stale) == (1, 0)
    family = json.loads(next(r.value for r in result.records if r.topic == "f") or b"")
    member = json.loads(next(r.value for r in result.records if r.topic == "m") or b"")
    assert (family["revision"], member["revision"], member["matched_nik"]) == (2, 2, nik_for(2))
    store.apply(result.update)
    assert store.families([FAMILY_KEY])[FAMILY_KEY].revision == 2
    store.close()
    reopened = LinkStore(tmp_path / "links.duckdb")  # the owner survives a restart
    assert reopened.families([FAMILY_KEY])[FAMILY_KEY] == FamilyState(2, _sub(2).submission_id, (1,), "a")


def test_supervisors_and_step_come_from_the_linker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.linker.settings import LinkerSettings

    monkeypatch.setenv("REGSOSEK_LINKER_SUPERVISOR_TEAMS", '["team-3603-sup"]')
    monkeypatch.setenv("REGSOSEK_LINKER_MAX_REVISION_STEP", "5")
    settings = LinkerSettings()
    assert (settings.supervisor_teams, settings.max_revision_step) == (frozenset({"team-3603-sup"}), 5)
    assert LinkerSettings.model_fields["max_revision_step"].default == MAX_REVISION_STEP
