"""Clerical decisions applied by the linker (fake engine, a real link-store file, no broker): the member's
link, person id, family record and update events; dead letters; undo; sticky across re-processing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from contracts.dead_letter import DEAD_LETTER_ADAPTER
from contracts.decode import decode_family_submission
from contracts.linkage_outputs import INTEGRATED_FAMILY_ADAPTER, LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome, ShownCandidate, decision_id_of
from integration.clerical import SecondReview
from integration.ids import PersonIds
from services.kafka.record import KafkaRecord
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.linker.updates.applier import UpdateTopics
from services.linker.updates.decisions import DecisionApplier
from services.linker.updates.handler import StoreMemberIndex
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch

IDS = PersonIds(b"test-key")
AHMAD, SITI, SITTI = nik_for(2), nik_for(3, female=True), nik_for(7, female=True)
KEY = f"{FAMILY_KEY}-02"
TOPICS = OutputTopics("m", "f", "r")
UPDATE_TOPICS = UpdateTopics(members="m", review="r", updates="u", families="f")

DECIDED_AT = dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC)
ENUMERATED_AT = dt.datetime(2022, 10, 20, 2, 15, tzinfo=dt.UTC)  # sample_submission: 09:15 +07:00


def _fake() -> FakeMemberLinker:
    fake = FakeMemberLinker.of(
        [
            FakeMasterPerson(AHMAD, "Ahmad Fauzi", "3603121705150003"),
            FakeMasterPerson(SITI, "Siti Aminah", "3603121705150003", dtks_id="D-1", dtks_decile=2),
            FakeMasterPerson(SITTI, "Sitti Aminah", "3603121705150009"),
        ]
    )
    fake.rank_candidates = True
    return fake


def _submission(revision: int = 1, siti: str = "Sity Aminah"):  # type: ignore[no-untyped-def]
    members = [member_payload(1, "Ahmad Fauzi", AHMAD), member_payload(2, siti, SITI, sex=2, relationship=2)]
    doc = submission_payload(members, revision=revision)
    return decode_family_submission(json.dumps(doc).encode(), key=FAMILY_KEY.encode())


def _decision(
    seq: int,
    outcome: ReviewOutcome,
    chosen: str | None = None,
    revokes: str | None = None,
    task: str = f"{KEY}/r1",
    revision: int = 1,
    who: str = "rina",
    role: ReviewerRole = ReviewerRole.REVIEWER,
) -> ReviewDecision:
    return ReviewDecision(
        decision_id=decision_id_of(task, seq),
        task_id=task,
        member_key=KEY,
        revision=revision,
        sequence=seq,
        outcome=outcome,
        chosen_record_id=chosen,
        revokes_decision_id=revokes,
        reviewer_id=who,
        reviewer_role=role,
        decided_at=DECIDED_AT,
        shown=[
            ShownCandidate(rank=1, record_id=SITI, probability=0.6, match_weight=1.25),
            ShownCandidate(rank=2, record_id=SITTI, probability=0.25, match_weight=-1.5),
        ],
        model_version="fake-1",
    )


def _record(offset: int, value: bytes, key: bytes | None = KEY.encode()) -> KafkaRecord:
    return KafkaRecord("d", 0, offset, key, value, 1_700_000_000_000)


class Rig:
    def __init__(self, tmp_path: Path, second: SecondReview | None = None) -> None:
        self.fake = _fake()
        self.store = LinkStore(tmp_path / "links.duckdb")
        self.pipeline = SubmissionLinker(self.fake, IDS, TOPICS)
        self.applier = DecisionApplier(
            self.fake,
            StoreMemberIndex(lambda: {0: self.store}),
            self.store.decisions_of,
            IDS,
            UPDATE_TOPICS,
            "dlq",
            second_review=second,
        )

    def link(self, revision: int = 1, siti: str = "Sity Aminah") -> dict[str, dict[str, bytes | None]]:
        result = link_batch(self.pipeline, self.store, [_submission(revision, siti)])
        self.store.apply(result.update)
        return _topics(result.records)

    def decide(self, *decisions: ReviewDecision | bytes) -> tuple[dict[str, list[bytes | None]], object]:
        raw = [d if isinstance(d, bytes) else d.model_dump_json().encode() for d in decisions]
        result = self.applier.process([_record(i, v) for i, v in enumerate(raw)])
        # as the handler does once every record is acknowledged
        self.store.apply_decisions(result.entries, result.states)
        out: dict[str, list[bytes | None]] = {}
        for r in result.records:
            out.setdefault(r.topic, []).append(r.value)
        return out, result


def _topics(records) -> dict[str, dict[str, bytes | None]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, bytes | None]] = {}
    for r in records:
        out.setdefault(r.topic, {})[r.key.decode()] = r.value
    return out


def test_accept_links_the_member_to_the_chosen_candidate_with_link_created_and_merged(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    first = rig.link()
    assert REVIEW_TASK_ADAPTER.validate_json(first["r"][KEY] or b"").task_id == f"{KEY}/r1"
    before = LINKED_MEMBER_ADAPTER.validate_json(first["m"][KEY] or b"")
    out, result = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI))
    (member_json,) = out["m"]
    member = LINKED_MEMBER_ADAPTER.validate_json(member_json or b"")
    assert (
        member.decision.value,
        member.band.value,
        member.matched_nik,
        member.person_id,
        member.person_id_kind.value,
        member.probability,
        member.match_weight,
    ) == (
        "linked",
        "clerical_link",
        SITTI,
        IDS.for_master(SITTI),
        "master",
        0.25,
        -1.5,
    )
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(v or b"") for v in out["u"]]
    assert [(e.event, e.cause.source.value, e.cause.change, e.cause.change_id) for e in events] == [
        ("link_created", "review", "clerical", decision_id_of(f"{KEY}/r1", 0)),
        ("merged", "review", "clerical", decision_id_of(f"{KEY}/r1", 0)),
    ]
    merged = events[1]
    assert (merged.old_person_id, merged.new_person_id) == (before.person_id, IDS.for_master(SITTI))  # type: ignore[union-attr]
    (family_json,) = out["f"]
    family = INTEGRATED_FAMILY_ADAPTER.validate_json(family_json or b"")
    assert [m.person_id for m in family.members] == [IDS.for_master(AHMAD), IDS.for_master(SITTI)]
    assert (result.applied, result.events, "r" in out, "dlq" in out) == (1, 2, False, False)  # type: ignore[attr-defined]
    # the same decision again (a re-delivery) is dropped by id: nothing produced
    again, result = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI))
    assert (again, result.duplicates) == ({}, 1)  # type: ignore[attr-defined]


def test_the_decision_is_sticky_for_the_same_member_data_and_not_for_changed_data(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.link()
    decided, _ = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI))
    (decided_json,) = decided["m"]
    # the same revision re-processed: the same member record, no review task; only its event time is the
    # submission's again (enumerated_at), where the decision's record had the decision's time
    again = rig.link()
    decided_member = LINKED_MEMBER_ADAPTER.validate_json(decided_json or b"")
    again_member = LINKED_MEMBER_ADAPTER.validate_json(again["m"][KEY] or b"")
    untimed = {"event_time": None}
    assert again_member.model_copy(update=untimed) == decided_member.model_copy(update=untimed)
    assert (decided_member.event_time, again_member.event_time) == (DECIDED_AT, ENUMERATED_AT)
    assert KEY not in again.get("r", {})
    # a new revision with the same member data keeps it (only the revision differs)
    newer = LINKED_MEMBER_ADAPTER.validate_json(rig.link(revision=2)["m"][KEY] or b"")
    assert (newer.revision, newer.band.value, newer.matched_nik) == (2, "clerical_link", SITTI)
    # changed member data: the engine's link again, and a new review task
    changed = rig.link(revision=3, siti="Siti Aminah Putri")
    member = LINKED_MEMBER_ADAPTER.validate_json(changed["m"][KEY] or b"")
    assert (member.band.value, member.matched_nik) == ("review", None)
    assert REVIEW_TASK_ADAPTER.validate_json(changed["r"][KEY] or b"").task_id == f"{KEY}/r3"


def test_new_person_then_undo_restores_the_review_and_a_split_follows_an_undone_accept(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.link()
    new = _decision(0, ReviewOutcome.NEW_PERSON)
    out, _ = rig.decide(new)
    member = LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"")
    assert (member.decision.value, member.band.value, member.matched_nik, member.person_id_kind.value) == (
        "not_linked",
        "no_match",
        None,
        "minted",
    )
    assert [LINKAGE_UPDATE_ADAPTER.validate_json(v or b"").event for v in out["u"]] == ["link_changed"]
    undo = _decision(1, ReviewOutcome.UNDO, revokes=new.decision_id)
    out, _ = rig.decide(undo)
    member = LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"")
    assert (member.decision.value, member.band.value) == ("pending_review", "review")
    task = REVIEW_TASK_ADAPTER.validate_json(out["r"][0] or b"")
    assert task.task_id == f"{KEY}/r1/{undo.decision_id}"
    # accept on the new task, then undo it: split back to the member's minted id
    accept = _decision(0, ReviewOutcome.ACCEPT, SITI, task=task.task_id)
    out, _ = rig.decide(accept)
    assert LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"").matched_nik == SITI
    out, _ = rig.decide(_decision(1, ReviewOutcome.UNDO, revokes=accept.decision_id, task=task.task_id))
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(v or b"") for v in out["u"]]
    assert [e.event for e in events] == ["split"]
    assert events[0].member.person_id == IDS.mint(KEY)


def test_bad_decisions_are_dead_lettered_with_their_reason_and_change_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.link()
    other = ReviewDecision.model_validate(
        {**_decision(0, ReviewOutcome.SKIP, task=f"{FAMILY_KEY}-09/r1").model_dump(), "member_key": f"{FAMILY_KEY}-09"}
    )
    out, result = rig.decide(
        b"{not json",
        _decision(0, ReviewOutcome.SKIP, task=f"{KEY}/r2", revision=2),  # a revision never linked
        _decision(3, ReviewOutcome.NEW_PERSON),  # not the next sequence
        _decision(0, ReviewOutcome.UNDO, revokes=decision_id_of(f"{KEY}/r1", 5)),  # nothing to undo
        other,  # produced under this member's key
    )
    letters = [DEAD_LETTER_ADAPTER.validate_json(v or b"") for v in out["dlq"]]
    assert [(d.reason.value, d.source_offset) for d in letters] == [
        ("not_json", 0),
        ("unknown_task", 1),
        ("stale_sequence", 2),
        ("undo_mismatch", 3),
        ("key_mismatch", 4),
    ]
    assert set(out) == {"dlq"}
    assert (result.applied, result.entries) == (0, [])  # type: ignore[attr-defined]
    # a decision for a member the linker does not hold (key and payload agree)
    res = rig.applier.process([_record(9, other.model_dump_json().encode(), f"{FAMILY_KEY}-09".encode())])
    assert [DEAD_LETTER_ADAPTER.validate_json(r.value or b"").reason.value for r in res.records] == ["unknown_member"]


def test_master_changes_keep_the_human_decision(tmp_path: Path) -> None:
    from contracts.linkage_updates import ChangeSource, UpdateCause
    from integration.master import MasterPerson
    from services.linker.updates.applier import ChangeApplier
    from services.linker.updates.changes import Change

    rig = Rig(tmp_path)
    rig.link()
    rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI))
    applier = ChangeApplier(rig.fake, StoreMemberIndex(lambda: {0: rig.store}), IDS, UPDATE_TOPICS)
    died = MasterPerson(SITTI, "3603121705150009", "Sitti Aminah", "F", "1980-05-15", "", "", True)
    result = applier.process(
        [Change(UpdateCause(source=ChangeSource.DUKCAPIL, change="died", change_id="c-1"), person=died)]
    )
    # the member's record is unchanged (still the reviewer's link: without the decision the engine's
    # re-link would have put it back in review), and the death of the chosen person is an event
    assert not [r for r in result.records if r.topic in ("m", "r")]
    events = [LINKAGE_UPDATE_ADAPTER.validate_json(r.value or b"") for r in result.records if r.topic == "u"]
    assert [(e.event, e.member.band.value, e.member.matched_nik) for e in events] == [
        ("person_died", "clerical_link", SITTI)
    ]


SARI = ReviewerRole.SUPERVISOR


def _events(out: dict[str, list[bytes | None]]) -> list[str]:
    return [LINKAGE_UPDATE_ADAPTER.validate_json(v or b"").event for v in out.get("u", [])]


def test_a_flagged_district_needs_two_agreeing_reviewers(tmp_path: Path) -> None:
    rig = Rig(tmp_path, SecondReview(districts=frozenset({FAMILY_KEY[:7]})))
    rig.link()
    first = _decision(0, ReviewOutcome.ACCEPT, SITTI)
    out, result = rig.decide(first)
    # held: the member is unchanged, no event, and a second-review task is raised
    assert (set(out), result.held, result.applied) == ({"r"}, 1, 0)  # type: ignore[attr-defined]
    second_task = REVIEW_TASK_ADAPTER.validate_json(out["r"][0] or b"")
    assert (second_task.task_id, second_task.candidate_nik) == (f"{KEY}/r1/second-{first.decision_id}", SITI)
    assert [c.nik for c in second_task.candidates] == [SITI, SITTI]
    # the same reviewer cannot confirm their own decision
    out, _ = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI, task=second_task.task_id))
    assert [DEAD_LETTER_ADAPTER.validate_json(v or b"").reason.value for v in out["dlq"]] == ["same_reviewer"]
    # another reviewer agrees: applied
    out, result = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI, task=second_task.task_id, who="budi"))
    member = LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"")
    assert (member.band.value, member.matched_nik, _events(out)) == ("clerical_link", SITTI, ["link_created", "merged"])
    # and sticky like any other decision
    assert LINKED_MEMBER_ADAPTER.validate_json(rig.link()["m"][KEY] or b"").matched_nik == SITTI


def test_disagreeing_reviewers_ask_for_another_review_and_a_supervisor_decides_alone(tmp_path: Path) -> None:
    rig = Rig(tmp_path, SecondReview(districts=frozenset({FAMILY_KEY[:7]})))
    rig.link()
    first = _decision(0, ReviewOutcome.ACCEPT, SITTI)
    out, _ = rig.decide(first)
    task2 = f"{KEY}/r1/second-{first.decision_id}"
    other = _decision(0, ReviewOutcome.NEW_PERSON, task=task2, who="budi")
    out, result = rig.decide(other)
    assert (result.held, set(out)) == (1, {"r"})  # type: ignore[attr-defined]
    task3 = REVIEW_TASK_ADAPTER.validate_json(out["r"][0] or b"").task_id
    assert task3 == f"{KEY}/r1/second-{other.decision_id}"
    out, _ = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITI, task=task3, who="sari", role=SARI))
    member = LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"")
    assert (member.band.value, member.matched_nik) == ("clerical_link", SITI)
    # a supervisor's first decision in a flagged district applies at once
    rig2 = Rig(tmp_path / "b", SecondReview(districts=frozenset({FAMILY_KEY[:7]})))
    rig2.link()
    out, _ = rig2.decide(_decision(0, ReviewOutcome.NEW_PERSON, who="sari", role=SARI))
    assert LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"").band.value == "no_match"


def test_overriding_a_likely_engine_candidate_needs_a_second_reviewer(tmp_path: Path) -> None:
    rig = Rig(tmp_path, SecondReview(min_probability=0.5))
    rig.link()
    # the engine's own candidate (probability 0.6): no override, applied
    out, result = rig.decide(_decision(0, ReviewOutcome.ACCEPT, SITI))
    assert (result.applied, result.held) == (1, 0)  # type: ignore[attr-defined]
    rig2 = Rig(tmp_path / "b", SecondReview(min_probability=0.5))
    rig2.link()
    out, result = rig2.decide(_decision(0, ReviewOutcome.ACCEPT, SITTI))
    assert (result.applied, result.held, set(out)) == (0, 1, {"r"})  # type: ignore[attr-defined]
    rig3 = Rig(tmp_path / "c", SecondReview(min_probability=0.7))  # the engine's 0.6 is below the bar
    rig3.link()
    _, result = rig3.decide(_decision(0, ReviewOutcome.NEW_PERSON))
    assert (result.applied, result.held) == (1, 0)  # type: ignore[attr-defined]


def test_only_a_supervisor_reverses_another_reviewers_decision(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.link()
    accept = _decision(0, ReviewOutcome.ACCEPT, SITTI)
    rig.decide(accept)
    out, _ = rig.decide(_decision(1, ReviewOutcome.UNDO, revokes=accept.decision_id, who="budi"))
    assert [DEAD_LETTER_ADAPTER.validate_json(v or b"").reason.value for v in out["dlq"]] == ["forbidden_undo"]
    out, _ = rig.decide(_decision(1, ReviewOutcome.UNDO, revokes=accept.decision_id, who="sari", role=SARI))
    assert _events(out) == ["split"]
    member = LINKED_MEMBER_ADAPTER.validate_json(out["m"][0] or b"")
    assert (member.decision.value, member.person_id) == ("pending_review", IDS.mint(KEY))
