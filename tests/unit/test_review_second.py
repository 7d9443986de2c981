"""The review app and the linker's second-reviewer rule, and the backlog metrics read at each scrape.

A held decision makes the linker raise `<task id>/second-<decision id>` on linkage.review.v1 (docs/linker.md,
"Second-reviewer rule"). The app shows it as a second review with the first decision, keeps it out of the
queue of the reviewer who made that decision and refuses their accept/new person (`same_reviewer`) instead
of letting the linker dead-letter it; agreement of second decisions is counted.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from prometheus_client.parser import text_string_to_metric_families

from contracts.linkage_outputs import ReviewTask
from contracts.review_decisions import REVIEW_DECISION_ADAPTER, ReviewDecision, ReviewOutcome, decision_id_of
from services.review.store import CLOSED, DECIDED, OPEN
from tests.support.review import CANDIDATE_NIKS, sample_task
from tests.unit.review_support import HOUR_MS, NOW_MS, Rig, csrf_of, login, put, rig

DAY_MS = 24 * HOUR_MS


def _sent(r: Rig) -> list[ReviewDecision]:
    return [REVIEW_DECISION_ADAPTER.validate_json(v) for _, _, v in r.producer.sent]


def _decide(client, task_id: str, action: str, *, rank: int = 0, sequence: int = 0):  # type: ignore[no-untyped-def]
    page = client.get("/tasks/" + quote(task_id, safe=""))
    return client.post(
        "/decide",
        data={
            "csrf": csrf_of(page.text),
            "task_id": task_id,
            "action": action,
            "rank": str(rank),
            "sequence": str(sequence),
        },
        follow_redirects=False,
    )


def _second_of(task: ReviewTask, held_id: str) -> ReviewTask:
    """The task the linker raises for a held decision (integration/clerical.py's naming)."""
    return task.model_copy(update={"task_id": f"{task.task_id}/second-{held_id}"})


def _metrics(r: Rig) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = r.client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def _listed(client) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r'task-link">([^<]+)<', client.get("/").text)


def test_a_second_review_shows_the_first_decision_and_refuses_its_own_reviewer(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS - 2 * HOUR_MS))
    login(r.client, "rina")
    assert _decide(r.client, task.task_id, "accept", rank=2).status_code == 303
    [held] = _sent(r)
    second = _second_of(task, held.decision_id)
    put(r.store, (second, NOW_MS))  # the linker held rina's accept and raised the second review
    stored = r.store.task(second.task_id)
    assert stored is not None and (stored.source, stored.status, stored.sequence) == ("second_review", OPEN, 0)

    budi = r.new_client()
    login(budi, "budi")
    assert _listed(r.client) == [] and _listed(budi) == [second.task_id]  # hidden from rina only
    assert "<td>second review</td>" in budi.get("/").text
    page = budi.get("/tasks/" + quote(second.task_id, safe="")).text
    assert 'id="second-review"' in page and '<span id="held-by">rina</span> (reviewer)' in page
    assert '<strong id="held-what">accept candidate 2</strong>' in page and "2026-12-06 08:00 UTC" in page
    assert page.index('id="held-choice"') > page.index("Candidate 2") > page.index("Candidate 1")
    assert 'id="accept-1"' in page and 'id="held-mine"' not in page
    assert not any(nik in page for nik in CANDIDATE_NIKS)  # the first choice is named by rank, not by NIK

    own = r.client.get("/tasks/" + quote(second.task_id, safe="")).text
    assert 'id="held-mine"' in own and 'id="accept-1"' not in own and 'id="new_person"' not in own
    for action, rank in (("accept", 2), ("new_person", 0)):  # a forged form gets the same answer
        refused = _decide(r.client, second.task_id, action, rank=rank)
        assert refused.status_code == 403 and "another reviewer has to decide it" in refused.text
    assert len(r.producer.sent) == 1
    stored = r.store.task(second.task_id)
    assert stored is not None and (stored.status, stored.sequence) == (OPEN, 0)

    assert _decide(budi, second.task_id, "accept", rank=2).status_code == 303
    confirm = _sent(r)[1]
    assert (confirm.task_id, confirm.sequence, confirm.reviewer_id) == (second.task_id, 0, "budi")
    assert (confirm.outcome, confirm.chosen_record_id) == (ReviewOutcome.ACCEPT, held.chosen_record_id)
    assert confirm.decision_id == decision_id_of(second.task_id, 0)
    stored = r.store.task(second.task_id)
    assert stored is not None and stored.status == DECIDED
    m = _metrics(r)
    assert m[("regsosek_review_decisions_refused_total", (("reason", "same_reviewer"),))] == 2
    assert [
        m[("regsosek_review_second_decisions_total", (("result", x),))] for x in ("agree", "disagree", "unknown")
    ] == [1, 0, 0]
    assert (
        m[("regsosek_review_decisions_total", (("outcome", "accept"), ("regency", "3603"), ("role", "reviewer")))] == 2
    )


def test_disagreement_and_an_unknown_first_decision_are_counted_and_a_supervisor_may_decide(tmp_path: Path) -> None:
    r = rig(tmp_path)
    a, b = sample_task(1), sample_task(2)
    put(r.store, (a, NOW_MS), (b, NOW_MS))
    login(r.client, "rina")
    _decide(r.client, a.task_id, "accept", rank=1)
    held = _sent(r)[0]
    elsewhere = "f" * 32  # held by a decision this app never recorded (e.g. another app instance)
    put(r.store, (_second_of(a, held.decision_id), NOW_MS), (_second_of(b, elsewhere), NOW_MS))
    budi = r.new_client()
    login(budi, "budi")
    assert _decide(budi, _second_of(a, held.decision_id).task_id, "accept", rank=2).status_code == 303
    unknown_page = r.client.get("/tasks/" + quote(_second_of(b, elsewhere).task_id, safe="")).text
    assert f"The decision <code>{elsewhere}</code> waits for a second reviewer" in unknown_page
    assert 'id="accept-1"' in unknown_page  # who made it is not known here: the linker judges
    supervisor = r.new_client()
    login(supervisor, "sari")
    assert _decide(supervisor, _second_of(b, elsewhere).task_id, "new_person").status_code == 303
    assert [(d.task_id, d.outcome, d.reviewer_id) for d in _sent(r)[1:]] == [
        (_second_of(a, held.decision_id).task_id, ReviewOutcome.ACCEPT, "budi"),
        (_second_of(b, elsewhere).task_id, ReviewOutcome.NEW_PERSON, "sari"),
    ]
    m = _metrics(r)
    assert [
        m[("regsosek_review_second_decisions_total", (("result", x),))] for x in ("agree", "disagree", "unknown")
    ] == [0, 1, 1]
    assert (
        m[("regsosek_review_decisions_total", (("outcome", "new_person"), ("regency", "3603"), ("role", "supervisor")))]
        == 1
    )


def test_undoing_the_held_decision_closes_its_second_review(tmp_path: Path) -> None:
    r = rig(tmp_path)
    a, b = sample_task(1), sample_task(2)
    put(r.store, (a, NOW_MS), (b, NOW_MS))
    login(r.client, "rina")
    _decide(r.client, a.task_id, "accept", rank=1)
    _decide(r.client, b.task_id, "new_person")
    held_a, held_b = _sent(r)
    put(r.store, (_second_of(a, held_a.decision_id), NOW_MS))  # raised before the undo
    for held in (held_a, held_b):
        queue = r.client.get("/")
        undone = r.client.post(
            "/undo", data={"csrf": csrf_of(queue.text), "decision_id": held.decision_id}, follow_redirects=False
        )
        assert undone.status_code == 303
    put(r.store, (_second_of(b, held_b.decision_id), NOW_MS))  # raised before the undo, read after it
    assert [
        r.store.task(_second_of(t, h.decision_id).task_id).status  # type: ignore[union-attr]
        for t, h in ((a, held_a), (b, held_b))
    ] == [CLOSED, CLOSED]
    budi = r.new_client()
    login(budi, "budi")
    assert set(_listed(budi)) == {a.task_id, b.task_id}  # the first tasks are open again, no second review
    closed = _decide(budi, _second_of(a, held_a.decision_id).task_id, "accept", rank=1)
    assert closed.status_code == 409 and "left review" in closed.text and len(r.producer.sent) == 4


def test_backlog_metrics_are_read_from_the_state_at_each_scrape(tmp_path: Path) -> None:
    r = rig(tmp_path)
    ages_h = {1: 2, 2: 30, 3: 30, 4: 100, 5: 200, 6: 400}  # family serial -> age in hours
    put(r.store, *[(sample_task(n), NOW_MS - h * HOUR_MS) for n, h in ages_h.items()])
    put(r.store, (_second_of(sample_task(7), "e" * 32), NOW_MS + HOUR_MS))  # a record time ahead of the clock
    m = _metrics(r)  # nobody has looked at the queue
    assert m[("regsosek_review_open_tasks", ())] == 7
    by_age = {labels[0][1]: v for (name, labels), v in m.items() if name == "regsosek_review_open_tasks_by_age"}
    assert by_age == {"0-1d": 2, "1-3d": 2, "3-7d": 1, "7-14d": 1, "14d+": 1}
    assert m[("regsosek_review_oldest_open_task_age_seconds", ())] == 400 * 3600
    assert m[("regsosek_review_open_second_reviews", ())] == 1
    login(r.client, "rina")
    _decide(r.client, sample_task(6).task_id, "new_person")  # the oldest task is decided
    m = _metrics(r)
    assert (m[("regsosek_review_open_tasks", ())], m[("regsosek_review_oldest_open_task_age_seconds", ())]) == (
        6,
        200 * 3600,
    )
    empty = rig(tmp_path / "empty")
    assert _metrics(empty)[("regsosek_review_oldest_open_task_age_seconds", ())] == 0
