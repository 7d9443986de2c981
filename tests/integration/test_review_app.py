"""The review app with the real broker: tasks read from the review topic, decisions on the decisions topic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

from contracts.review_decisions import ReviewOutcome, decision_id_of
from services.review.app import build_app
from services.review.store import CLOSED, DECIDED, OPEN
from tests.review_broker import decisions_on, publish_world, ready, review_settings, wait_for
from tests.support.gateway import serving
from tests.support.review import CANDIDATE_NIKS, PASSWORD, sample_master
from tests.unit.review_support import NOW, USERS

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker

pytestmark = pytest.mark.broker


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _login(client: httpx.Client, user: str) -> None:
    page = client.get("/login")
    assert client.post("/login", data={"csrf": _csrf(page.text), "user": user, "password": PASSWORD}).status_code == 200


def _decide(client: httpx.Client, task_id: str, action: str, rank: int = 0) -> httpx.Response:
    page = client.get("/tasks/" + quote(task_id, safe=""))
    sequence = re.search(r'name="sequence" value="(\d+)"', page.text)
    return client.post(
        "/decide",
        data={
            "csrf": _csrf(page.text),
            "task_id": task_id,
            "action": action,
            "rank": str(rank),
            "sequence": sequence.group(1) if sequence else "0",
        },
    )


def test_reviewers_resolve_tasks_and_the_exact_decisions_reach_the_broker(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    settings = review_settings(kafka_broker.bootstrap, tmp_path)
    a, b, c = publish_world(settings)
    app = build_app(settings, users=USERS, master=sample_master(), clock=lambda: NOW)
    with serving(app) as base, httpx.Client(base_url=base, follow_redirects=True) as rina:
        wait_for(lambda: ready(base), "the review app to read its topics")
        _login(rina, "rina")
        queue = rina.get("/").text
        assert [t for t in re.findall(r'task-link">([^<]+)<', queue)] == [a.task_id, b.task_id]  # c left review
        assert "Siti Aminah" in rina.get("/tasks/" + quote(a.task_id, safe="")).text  # submission read too
        accepted = _decide(rina, a.task_id, "accept", rank=2)
        assert accepted.status_code == 200 and "acknowledged by the broker" in accepted.text
        assert _decide(rina, b.task_id, "new_person").status_code == 200
        closed = _decide(rina, c.task_id, "accept", rank=1)
        assert closed.status_code == 409
        replay = rina.post(
            "/decide",
            data={"csrf": _csrf(queue), "task_id": a.task_id, "action": "accept", "rank": "1", "sequence": "0"},
        )
        assert replay.status_code == 409
        produced = decisions_on(settings)
    # The two member keys may sit on different partitions: compare as sets of exact records.
    assert sorted(
        (k, d.decision_id, d.outcome, d.chosen_record_id, d.reviewer_id, d.decided_at, d.sequence) for k, d in produced
    ) == sorted(
        [
            (a.member_key, decision_id_of(a.task_id, 0), ReviewOutcome.ACCEPT, CANDIDATE_NIKS[1], "rina", NOW, 0),
            (b.member_key, decision_id_of(b.task_id, 0), ReviewOutcome.NEW_PERSON, None, "rina", NOW, 0),
        ]
    )
    by_task = {d.task_id: d for _, d in produced}
    assert len(produced) == 2 and set(by_task) == {a.task_id, b.task_id}
    assert by_task[a.task_id].chosen_record_id == CANDIDATE_NIKS[1]
    assert [c_.record_id for c_ in by_task[a.task_id].shown] == list(CANDIDATE_NIKS)
    assert by_task[b.task_id].outcome is ReviewOutcome.NEW_PERSON

    # Restart on the same state file: nothing is lost or read twice; an undo goes out after the restart.
    again = build_app(settings, users=USERS, master=sample_master(), clock=lambda: NOW)
    with serving(again) as base, httpx.Client(base_url=base, follow_redirects=True) as rina:
        wait_for(lambda: ready(base), "the restarted app to catch up")
        store = again.state.store
        assert [store.task(t.task_id).status for t in (a, b, c)] == [DECIDED, DECIDED, CLOSED]
        assert store.open_count() == 0
        _login(rina, "rina")
        undo = rina.post("/undo", data={"csrf": _csrf(rina.get("/").text), "decision_id": decision_id_of(a.task_id, 0)})
        assert undo.status_code == 200 and store.task(a.task_id).status == OPEN
        produced = decisions_on(settings)
    undos = [d for _, d in produced if d.outcome is ReviewOutcome.UNDO]
    assert len(produced) == 3 and len(undos) == 1
    assert (undos[0].task_id, undos[0].revokes_decision_id, undos[0].sequence) == (
        a.task_id,
        decision_id_of(a.task_id, 0),
        1,
    )
