"""Shared set-up of the review app's broker tests: own topics, records on them, the app under uvicorn."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from contracts.linkage_outputs import LinkBand, LinkedMember, MemberDecision, PersonIdKind, ReviewTask
from contracts.review_decisions import REVIEW_DECISION_ADAPTER, ReviewDecision
from contracts.topics import TopicSpec
from services.kafka import topics
from services.kafka.io import JsonProducer, read_topic
from services.review.settings import ReviewSettings
from tests.support.gateway import sample_body
from tests.support.polling import poll_until
from tests.support.review import sample_task


def review_settings(bootstrap: str, tmp_path: Path) -> ReviewSettings:
    """Settings on fresh topics of this test (so other tests' records never mix in), provisioned now."""
    tag = uuid.uuid4().hex[:8]
    names = {k: f"test.review.{k}.{tag}" for k in ("review", "members", "submissions", "decisions")}
    topics.provision(
        bootstrap,
        [
            TopicSpec(n, 2, "delete", -1, key="member or family key", value_schema="any", description="review app test")
            for n in names.values()
        ],
    )
    return ReviewSettings(
        bootstrap=bootstrap,
        review_topic=names["review"],
        members_topic=names["members"],
        submissions_topic=names["submissions"],
        decisions_topic=names["decisions"],
        state_path=tmp_path / "review.sqlite",
        users_file=tmp_path / "users.json",
    )


def left_review(task: ReviewTask) -> LinkedMember:
    """A newer link of the task's member that is no longer in review (an auto link)."""
    return LinkedMember(
        member_key=task.member_key,
        family_key=task.member_key[:22],
        serial=int(task.member_key[-2:]),
        submission_id=task.submission_id,
        revision=task.revision,
        decision=MemberDecision.LINKED,
        band=LinkBand.AUTO_LINK,
        person_id="P-x",
        person_id_kind=PersonIdKind.MASTER,
        model_version=task.model_version,
    )


def publish_world(settings: ReviewSettings) -> list[ReviewTask]:
    """Three families' submissions and review tasks; the third member then leaves review (task closes)."""
    tasks = [sample_task(1, dtks_decile=2), sample_task(2), sample_task(3)]
    with JsonProducer(settings.bootstrap) as producer:
        producer.send_many(
            settings.submissions_topic, [(f"{t.member_key[:22]}", sample_body(int(t.member_key[19:22]))) for t in tasks]
        )
        producer.send_many(settings.review_topic, [(t.member_key, t) for t in tasks])
        producer.send(settings.members_topic, tasks[2].member_key, left_review(tasks[2]))
    return tasks


def decisions_on(settings: ReviewSettings) -> list[tuple[str, ReviewDecision]]:
    """(key, decision) of everything on the decisions topic, in offset order per partition."""
    return [
        (r.key.decode(), REVIEW_DECISION_ADAPTER.validate_json(r.value or b""))
        for r in read_topic(settings.bootstrap, settings.decisions_topic)
        if r.key
    ]


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll `check` until it returns a truthy value (its value), or fail naming `what`."""
    return poll_until(check, timeout_s, f"waiting for {what}", interval_s=0.1)


def ready(base: str) -> bool:
    """The app read its topics to their end."""
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
