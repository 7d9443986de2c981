"""The review queue's active-learning order (REGSOSEK_REVIEW_QUEUE_ORDER=uncertainty), exact task ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from review_support import HOUR_MS, NOW, NOW_MS, USERS, csrf_of, login, put

from contracts.linkage_outputs import ReviewCandidate, ReviewTask
from linkage.labels import uncertainty
from services.review.app import build_app
from services.review.settings import ReviewSettings
from services.review.store import AGE, UNCERTAINTY, QueueFilter, ReviewStore, task_uncertainty
from tests.support.review import CANDIDATE_NIKS, FakeProducer, sample_master, sample_task


def with_probabilities(family: int, *probabilities: float) -> ReviewTask:
    task = sample_task(family, candidates=len(probabilities))
    ranked = [
        ReviewCandidate(rank=c.rank, nik=c.nik, probability=p)
        for c, p in zip(task.candidates, probabilities, strict=True)
    ]
    return task.model_copy(update={"candidates": ranked, "probability": probabilities[0]})


# oldest first: sure (0.99 alone), lone 0.5, two close candidates, three candidates 0.7/0.5/0.3
SURE = with_probabilities(1, 0.99)
LONE = with_probabilities(2, 0.5)
CLOSE = with_probabilities(3, 0.6, 0.58)
THREE = with_probabilities(4, 0.7, 0.5, 0.3)


def test_uncertainty_is_the_entropy_over_the_candidates_and_none() -> None:
    assert uncertainty([0.5]) == pytest.approx(1.0)  # candidate or none, 50/50: one bit
    assert uncertainty([]) == 0.0 and uncertainty([None]) == 0.0
    assert uncertainty([0.99]) == pytest.approx(0.0807931, abs=1e-6)
    # two candidates at 0.5 each: thirds over (A, B, none)
    assert uncertainty([0.5, 0.5]) == pytest.approx(1.5849625, abs=1e-6)
    assert [round(task_uncertainty(t), 4) for t in (SURE, LONE, CLOSE, THREE)] == [0.0808, 1.0, 1.5646, 1.7626]


def _store(tmp_path: Path) -> ReviewStore:
    store = ReviewStore(tmp_path / "review.sqlite")
    put(
        store,
        (SURE, NOW_MS - 50 * HOUR_MS),
        (LONE, NOW_MS - 3 * HOUR_MS),
        (CLOSE, NOW_MS - 2 * HOUR_MS),
        (THREE, NOW_MS - 1 * HOUR_MS),
    )
    return store


def test_store_orders_by_age_or_by_uncertainty(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids = lambda order: [t.task_id for t in store.queue(QueueFilter(), NOW_MS, order=order)]  # noqa: E731
    assert ids(AGE) == [SURE.task_id, LONE.task_id, CLOSE.task_id, THREE.task_id]
    assert ids(UNCERTAINTY) == [THREE.task_id, CLOSE.task_id, LONE.task_id, SURE.task_id]
    # filters still apply: only tasks at least a day old
    assert [t.task_id for t in store.queue(QueueFilter(min_age_days=1), NOW_MS, order=UNCERTAINTY)] == [SURE.task_id]
    plan = store._db.execute(  # the order comes from the index: no sort step over all open tasks
        "EXPLAIN QUERY PLAN SELECT task_id FROM tasks WHERE status = 'open' "
        "ORDER BY uncertainty DESC, received_ms, task_id LIMIT 5"
    ).fetchall()
    assert any("tasks_uncertainty" in str(row) for row in plan)
    assert not any("TEMP B-TREE" in str(row) for row in plan)


def test_queue_page_and_next_task_follow_the_configured_order(tmp_path: Path) -> None:
    store = _store(tmp_path)
    settings = ReviewSettings(
        state_path=tmp_path / "review.sqlite", users_file=tmp_path / "u.json", queue_order="uncertainty"
    )
    app = build_app(
        settings,
        store=store,
        producer=FakeProducer(),
        users=USERS,
        master=sample_master(),
        registry=CollectorRegistry(),
        clock=lambda: NOW,
        ingest=False,
    )
    client = TestClient(app)
    login(client, "rina")
    html = client.get("/").text
    positions = [html.index(t.task_id) for t in (THREE, CLOSE, LONE, SURE)]
    assert positions == sorted(positions)
    page = client.get("/tasks/" + quote(THREE.task_id, safe="")).text
    done = client.post(
        "/decide",
        data={"csrf": csrf_of(page), "task_id": THREE.task_id, "action": "new_person", "sequence": "0"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/tasks/" + quote(CLOSE.task_id, safe=""))


def test_the_order_setting_defaults_to_age_and_rejects_others(tmp_path: Path) -> None:
    assert ReviewSettings().queue_order == "age"
    with pytest.raises(ValueError, match="queue_order"):
        ReviewSettings(queue_order="random")  # type: ignore[arg-type]


OLD_TASKS = """CREATE TABLE tasks (
  task_id TEXT PRIMARY KEY, member_key TEXT NOT NULL, family_key TEXT NOT NULL, district TEXT NOT NULL,
  village TEXT NOT NULL, source TEXT NOT NULL, revision INTEGER NOT NULL, received_ms INTEGER NOT NULL,
  aid_priority INTEGER NOT NULL, status TEXT NOT NULL, sequence INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL,
  day INTEGER GENERATED ALWAYS AS (received_ms / 86400000) VIRTUAL)"""


def test_a_state_file_from_before_the_order_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    db = sqlite3.connect(path)
    db.execute(OLD_TASKS)
    for i, task in enumerate((SURE, CLOSE, LONE)):
        db.execute(
            "INSERT INTO tasks (task_id, member_key, family_key, district, village, source, revision,"
            " received_ms, aid_priority, status, record) VALUES (?, ?, ?, ?, ?, 'submission', 1, ?, 1,"
            " 'open', ?)",
            (
                task.task_id,
                task.member_key,
                task.member_key[:22],
                task.member_key[:7],
                task.member_key[:10],
                NOW_MS + i,
                task.model_dump_json(),
            ),
        )
    db.commit()
    db.close()
    store = ReviewStore(path)
    assert [t.task_id for t in store.queue(QueueFilter(), NOW_MS, order=UNCERTAINTY)] == [
        CLOSE.task_id,
        LONE.task_id,
        SURE.task_id,
    ]
    assert CANDIDATE_NIKS[0] == SURE.candidate_nik
