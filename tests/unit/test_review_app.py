"""The review app on fakes: login, queue order and filters, task page, decisions, bad input, undo, restart."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import pytest

from contracts import events as ce
from contracts.linkage_outputs import LinkBand, LinkedMember, MemberDecision, PersonIdKind
from contracts.review_decisions import REVIEW_DECISION_ADAPTER, ReviewDecision, ReviewOutcome, decision_id_of
from services.kafka.events import cloud_event_headers, timestamp_ms
from services.review.store import CLOSED, DECIDED, OPEN, DecisionRefused, ReviewStore
from tests.support.review import CANDIDATE_NIKS, sample_task
from tests.unit.review_support import HOUR_MS, NOW, NOW_MS, csrf_of, login, put, rig


def _sent(r: object) -> list[ReviewDecision]:
    return [REVIEW_DECISION_ADAPTER.validate_json(v) for _, _, v in r.producer.sent]  # type: ignore[attr-defined]


def _decide(client, task_id: str, action: str, *, rank: int = 0, sequence: int = 0, csrf: str | None = None):  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    page = client.get("/tasks/" + quote(task_id, safe=""))
    token = csrf if csrf is not None else csrf_of(page.text)
    return client.post(
        "/decide",
        data={"csrf": token, "task_id": task_id, "action": action, "rank": str(rank), "sequence": str(sequence)},
        follow_redirects=False,
    )


def _diff_cells(html: str) -> set[tuple[str, int]]:
    table = html[html.index('<table id="compare">') : html.index("</table>", html.index('<table id="compare">'))]
    cells = set()
    for row in re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", table, flags=re.S):
        for column, td in enumerate(re.findall(r"<td( class=\"[a-z]*\")?>", row[1])):
            if 'class="diff"' in td:
                cells.add((row[0], column))
    return cells


def test_login_needs_the_right_password_and_a_login_form_token(tmp_path: Path) -> None:
    r = rig(tmp_path)
    assert r.client.get("/", follow_redirects=False).status_code == 303
    assert login(r.client, "rina", "wrong-password-123") == 401
    assert login(r.client, "nobody") == 401
    forged = r.client.post("/login", data={"csrf": "forged", "user": "rina", "password": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    assert login(r.client, "rina") == 303
    assert r.client.get("/").status_code == 200


def test_queue_is_oldest_day_first_then_aid_families_with_counts_and_filters(tmp_path: Path) -> None:
    r = rig(tmp_path)
    old = sample_task(1)  # two days old
    aid_today = sample_task(2, dtks_decile=3)  # today, aid depends on it: before the older one of today
    plain_today = sample_task(3)
    late_aid = sample_task(4, dtks_decile=9)  # decile 9: no aid priority
    put(
        r.store,
        (old, NOW_MS - 50 * HOUR_MS),
        (plain_today, NOW_MS - 3 * HOUR_MS),
        (aid_today, NOW_MS - 1 * HOUR_MS),
        (late_aid, NOW_MS - 2 * HOUR_MS),
    )
    login(r.client, "rina")
    html = r.client.get("/").text
    order = [t.task_id for t in (old, aid_today, plain_today, late_aid)]
    positions = [html.index(t) for t in order]
    assert positions == sorted(positions)
    assert '<td><a href="/?district=3603010">3603010</a></td><td>4</td>' in html
    aged = r.client.get("/", params={"age": 1}).text
    assert old.task_id in aged and aid_today.task_id not in aged
    assert "No open task matches" in r.client.get("/", params={"source": "master_change"}).text
    assert "No open task matches" in r.client.get("/", params={"village": "3603010002"}).text


def test_task_page_aligns_fields_marks_differences_and_masks_niks_for_reviewers(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    login(r.client, "rina")
    html = r.client.get(f"/tasks/{task.task_id}").text
    assert all(f"Candidate {n}" in html for n in (1, 2, 3))
    assert not any(nik in html for nik in CANDIDATE_NIKS)  # raw NIKs hidden from a reviewer
    assert "360312••••••••••" in html
    # Candidate 1 is the member's own record; 2 is a woman's NIK and name; 3 was born a year later.
    assert _diff_cells(html) == {
        ("Name", 2),
        ("Sex", 2),
        ("NIK", 2),
        ("NIK sex", 2),
        ("Name", 3),
        ("Birth date", 3),
        ("NIK", 3),
        ("NIK birth date", 3),
    }
    assert "Siti Aminah" in html  # family context: the other member of the submission
    assert "waterfall" in html and "prior" in html
    supervisor = r.new_client()
    login(supervisor, "sari")
    page = supervisor.get(f"/tasks/{task.task_id}")
    assert all(nik in page.text for nik in CANDIDATE_NIKS)
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_accept_produces_exactly_one_decision_with_who_when_and_what_was_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = rig(tmp_path)
    task, other = sample_task(1), sample_task(2)
    put(r.store, (task, NOW_MS - 2 * HOUR_MS), (other, NOW_MS))
    login(r.client, "rina")
    response = _decide(r.client, task.task_id, "accept", rank=2)
    assert response.status_code == 303 and response.headers["location"].startswith("/tasks/" + other.member_key)
    [decision] = _sent(r)
    assert r.producer.sent[0][:2] == ("linkage.review.decisions.v1", task.member_key)
    assert decision.decision_id == decision_id_of(task.task_id, 0)
    # CloudEvents headers: the decision's own id and decided_at, also as the record's timestamp
    value = r.producer.sent[0][2]
    assert r.producer.stamps == [
        (
            cloud_event_headers(
                ce.REVIEW_DECISION,
                source="urn:regsosek:service:review",
                topic="linkage.review.decisions.v1",
                key=task.member_key.encode(),
                value=value,
                time=decision.decided_at,
                id=decision.decision_id,
            ),
            timestamp_ms(decision.decided_at),
        )
    ]
    assert dict(r.producer.stamps[0][0] or [])["ce_id"] == decision.decision_id.encode()
    assert (decision.outcome, decision.chosen_record_id, decision.chosen_person_id) == (
        ReviewOutcome.ACCEPT,
        CANDIDATE_NIKS[1],
        "P-0003",
    )
    assert (decision.reviewer_id, decision.reviewer_role.value, decision.decided_at) == ("rina", "reviewer", NOW)
    assert [(c.rank, c.record_id, c.probability) for c in decision.shown] == [
        (1, CANDIDATE_NIKS[0], 0.7),
        (2, CANDIDATE_NIKS[1], 0.5),
        (3, CANDIDATE_NIKS[2], 0.3),
    ]
    stored = r.store.task(task.task_id)
    assert stored is not None and (stored.status, stored.sequence) == (DECIDED, 1)
    assert "Recorded and acknowledged by the broker" in r.client.get(response.headers["location"]).text
    assert decision.decision_id in caplog.text  # the decision is logged, without any personal value
    assert not any(nik in caplog.text for nik in CANDIDATE_NIKS) and "Fauzi" not in caplog.text


def test_new_person_and_skip(tmp_path: Path) -> None:
    r = rig(tmp_path)
    a, b = sample_task(1), sample_task(2)
    put(r.store, (a, NOW_MS), (b, NOW_MS))
    login(r.client, "rina")
    assert _decide(r.client, a.task_id, "new_person").status_code == 303
    assert _decide(r.client, b.task_id, "skip").status_code == 303
    assert [(d.outcome, d.chosen_record_id) for d in _sent(r)] == [
        (ReviewOutcome.NEW_PERSON, None),
        (ReviewOutcome.SKIP, None),
    ]
    skipped = r.store.task(b.task_id)
    assert skipped is not None and (skipped.status, skipped.sequence) == (OPEN, 1)
    assert f'task-link">{b.task_id}<' not in r.client.get("/").text  # hidden from the reviewer who skipped it
    other = r.new_client()
    login(other, "budi")
    assert f'task-link">{b.task_id}<' in other.get("/").text


def test_forged_replayed_unknown_and_unauthenticated_decisions_produce_nothing(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    assert _decide(r.client, task.task_id, "accept", rank=1, csrf="x").status_code == 401  # not logged in
    login(r.client, "rina")
    assert _decide(r.client, task.task_id, "accept", rank=1, csrf="forged").status_code == 403
    assert _decide(r.client, "3603010001000100009999-01/r1", "accept", rank=1).status_code == 404
    assert _decide(r.client, task.task_id, "accept", rank=7).status_code == 400  # a candidate not shown
    assert _decide(r.client, task.task_id, "delete").status_code == 400
    assert r.producer.sent == []
    assert _decide(r.client, task.task_id, "accept", rank=1).status_code == 303
    replay = _decide(r.client, task.task_id, "accept", rank=1)  # the same form posted again
    assert replay.status_code == 409 and "changed meanwhile" in replay.text
    assert len(r.producer.sent) == 1
    metrics = r.client.get("/metrics").text
    assert 'regsosek_review_decisions_refused_total{reason="csrf"} 1.0' in metrics
    assert 'regsosek_review_decisions_refused_total{reason="stale"} 1.0' in metrics
    assert 'regsosek_review_decisions_total{outcome="accept",regency="3603",role="reviewer"} 1.0' in metrics
    assert not any(nik in metrics for nik in CANDIDATE_NIKS) and "Fauzi" not in metrics


def test_two_reviewers_deciding_one_task_at_once_only_one_wins(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    other = r.new_client()
    login(r.client, "rina")
    login(other, "budi")
    first_page, second_page = r.client.get(f"/tasks/{task.task_id}"), other.get(f"/tasks/{task.task_id}")
    form = {"task_id": task.task_id, "action": "accept", "rank": "1", "sequence": "0"}
    a = r.client.post("/decide", data={**form, "csrf": csrf_of(first_page.text)}, follow_redirects=False)
    b = other.post(
        "/decide", data={**form, "action": "new_person", "csrf": csrf_of(second_page.text)}, follow_redirects=False
    )
    assert (a.status_code, b.status_code) == (303, 409)
    assert [d.reviewer_id for d in _sent(r)] == ["rina"]


def test_store_claims_race_from_threads_exactly_one_wins(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    decisions = [
        REVIEW_DECISION_ADAPTER.validate_python(
            {
                "decision_id": decision_id_of(task.task_id, 0),
                "task_id": task.task_id,
                "member_key": task.member_key,
                "revision": 1,
                "sequence": 0,
                "outcome": "new_person",
                "reviewer_id": f"r{i}",
                "reviewer_role": "reviewer",
                "decided_at": NOW.isoformat(),
                "shown": [],
                "model_version": "m",
            }
        )
        for i in range(8)
    ]
    won, refused = [], []
    barrier = threading.Barrier(8)

    def claim(d: ReviewDecision) -> None:
        barrier.wait()
        try:
            r.store.claim(d)
            won.append(d.reviewer_id)
        except DecisionRefused as exc:
            refused.append(exc.reason)

    threads = [threading.Thread(target=claim, args=(d,)) for d in decisions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and refused == ["stale"] * 7


def test_undo_revokes_the_last_decision_and_reopens_the_task(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    login(r.client, "rina")
    _decide(r.client, task.task_id, "accept", rank=1)
    first = _sent(r)[0]
    intruder = r.new_client()
    login(intruder, "budi")
    page = intruder.get("/")
    refused = intruder.post("/undo", data={"csrf": csrf_of(page.text), "decision_id": first.decision_id})
    assert refused.status_code == 403 and len(r.producer.sent) == 1  # another reviewer: not allowed
    queue = r.client.get("/")
    done = r.client.post(
        "/undo", data={"csrf": csrf_of(queue.text), "decision_id": first.decision_id}, follow_redirects=False
    )
    assert done.status_code == 303
    undo = _sent(r)[1]
    assert (undo.outcome, undo.revokes_decision_id, undo.sequence) == (ReviewOutcome.UNDO, first.decision_id, 1)
    assert undo.decision_id == decision_id_of(task.task_id, 1) and undo.shown == first.shown
    stored = r.store.task(task.task_id)
    assert stored is not None and (stored.status, stored.sequence) == (OPEN, 2)
    again = r.client.post("/undo", data={"csrf": csrf_of(queue.text), "decision_id": first.decision_id})
    assert again.status_code == 409 and len(r.producer.sent) == 2
    assert _decide(r.client, task.task_id, "new_person", sequence=2).status_code == 303


def test_supervisor_may_undo_another_reviewers_decision(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    login(r.client, "rina")
    _decide(r.client, task.task_id, "new_person")
    supervisor = r.new_client()
    login(supervisor, "sari")
    page = supervisor.get("/")
    ok = supervisor.post(
        "/undo", data={"csrf": csrf_of(page.text), "decision_id": _sent(r)[0].decision_id}, follow_redirects=False
    )
    assert ok.status_code == 303 and _sent(r)[1].reviewer_role.value == "supervisor"


def test_broker_failure_releases_the_claim_and_a_retry_produces_the_same_id(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    login(r.client, "rina")
    r.producer.fail = True
    failed = _decide(r.client, task.task_id, "accept", rank=1)
    assert failed.status_code == 503 and "nothing was recorded" in failed.text
    stored = r.store.task(task.task_id)
    assert stored is not None and (stored.status, stored.sequence) == (OPEN, 0) and r.store.unproduced() == []
    r.producer.fail = False
    assert _decide(r.client, task.task_id, "accept", rank=1).status_code == 303
    assert _sent(r)[0].decision_id == decision_id_of(task.task_id, 0)


def test_tasks_close_when_the_member_leaves_review_or_a_newer_revision_arrives(tmp_path: Path) -> None:
    r = rig(tmp_path)
    a, b = sample_task(1), sample_task(2)
    put(r.store, (a, NOW_MS), (b, NOW_MS))
    r.store.ingest([("review", sample_task(1, revision=2), NOW_MS)], {})
    linked = LinkedMember(
        member_key=b.member_key,
        family_key=b.member_key[:22],
        serial=1,
        submission_id="s",
        revision=1,
        decision=MemberDecision.LINKED,
        band=LinkBand.AUTO_LINK,
        person_id="p",
        person_id_kind=PersonIdKind.MASTER,
        model_version="m",
    )
    r.store.ingest([("member", linked, NOW_MS)], {})
    assert [r.store.task(t.task_id).status for t in (a, b)] == [CLOSED, CLOSED]  # type: ignore[union-attr]
    assert r.store.task(sample_task(1, revision=2).task_id).status == OPEN  # type: ignore[union-attr]
    login(r.client, "rina")
    closed = _decide(r.client, a.task_id, "accept", rank=1)
    assert closed.status_code == 409 and "left review" in closed.text and r.producer.sent == []


def test_state_survives_a_restart_and_the_outbox_is_produced_once(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = sample_task(1)
    put(r.store, (task, NOW_MS))
    r.store.ingest([], {("linkage.review.v1", 2): 17})
    pending = REVIEW_DECISION_ADAPTER.validate_python(
        {
            "decision_id": decision_id_of(task.task_id, 0),
            "task_id": task.task_id,
            "member_key": task.member_key,
            "revision": 1,
            "sequence": 0,
            "outcome": "skip",
            "reviewer_id": "rina",
            "reviewer_role": "reviewer",
            "decided_at": NOW.isoformat(),
            "shown": [],
            "model_version": "m",
        }
    )
    r.store.claim(pending)  # claimed, then the process died before the broker acknowledged
    r.store.close()
    again = rig(tmp_path, ReviewStore(tmp_path / "review.sqlite"))
    assert again.store.offsets() == {("linkage.review.v1", 2): 17}
    with again.client:  # lifespan: the outbox is flushed at start
        pass
    assert [json.loads(v)["decision_id"] for _, _, v in again.producer.sent] == [pending.decision_id]
    assert again.store.unproduced() == []
    with again.client:
        pass
    assert len(again.producer.sent) == 1


def test_a_task_raised_by_a_master_change_is_filtered_by_source_and_decidable(tmp_path: Path) -> None:
    r = rig(tmp_path)
    base = sample_task(1)
    change = base.model_copy(update={"task_id": f"{base.member_key}/r1/{'c' * 64}"})  # change ids up to 64 chars
    put(r.store, (change, NOW_MS), (sample_task(2), NOW_MS))
    login(r.client, "rina")
    listed = re.findall(r'task-link">([^<]+)<', r.client.get("/", params={"source": "master_change"}).text)
    assert listed == [change.task_id]
    assert _decide(r.client, change.task_id, "new_person").status_code == 303
    assert _sent(r)[0].task_id == change.task_id
