"""Builders shared by the review app's unit tests: an app on fakes, logged-in clients, stored tasks."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from contracts.linkage_outputs import ReviewTask
from contracts.review_decisions import ReviewerRole
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from services.review.app import build_app
from services.review.settings import ReviewSettings
from services.review.store import ReviewStore
from services.review.users import UserStore
from tests.support.gateway import sample_submission
from tests.support.review import PASSWORD, FakeProducer, sample_master

NOW = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR_MS = 3_600_000


@dataclass
class Rig:
    """An app on fakes and its parts."""

    store: ReviewStore
    producer: FakeProducer
    registry: CollectorRegistry
    client: TestClient
    settings: ReviewSettings
    app: FastAPI

    def new_client(self) -> TestClient:
        """Another browser on the same app (its own cookies)."""
        return TestClient(self.app)


def users() -> UserStore:
    store = UserStore({})
    store.add("rina", PASSWORD, ReviewerRole.REVIEWER)
    store.add("budi", PASSWORD, ReviewerRole.REVIEWER)
    store.add("sari", PASSWORD, ReviewerRole.SUPERVISOR)
    return store


USERS = users()  # scrypt is slow on purpose; hash once per test session


def rig(tmp_path: Path, store: ReviewStore | None = None) -> Rig:
    settings = ReviewSettings(state_path=tmp_path / "review.sqlite", users_file=tmp_path / "users.json")
    store = store or ReviewStore(settings.state_path)
    producer, registry = FakeProducer(), CollectorRegistry()
    app = build_app(
        settings,
        store=store,
        producer=producer,
        users=USERS,
        master=sample_master(),
        registry=registry,
        clock=lambda: NOW,
        ingest=False,
    )
    return Rig(store, producer, registry, TestClient(app), settings, app)


def put(store: ReviewStore, *tasks: tuple[ReviewTask, int]) -> None:
    """Store tasks (with their record timestamps) and the submissions of their families."""
    items: list[tuple[str, object, int]] = []
    for task, ts in tasks:
        serial = int(task.member_key[19:22])
        items.append(("submission", FAMILY_SUBMISSION_ADAPTER.validate_python(sample_submission(serial)), ts))
        items.append(("review", task, ts))
    store.ingest(items, {})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD) -> int:
    page = client.get("/login")
    response = client.post(
        "/login", data={"csrf": csrf_of(page.text), "user": user, "password": password}, follow_redirects=False
    )
    return response.status_code
