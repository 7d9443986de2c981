"""GET /v1/feedback over an index filled by hand: only the team's items, cursor paging, errors, metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from contracts.feedback import FeedbackKind, FeedbackStatus, FieldFeedback, feedback_item_id
from contracts.linkage_outputs import to_canonical_json
from integration.feedback import message_for
from services.gateway.app import build_app
from services.gateway.feedback import Cursor, FeedbackIndex
from services.gateway.settings import GatewaySettings
from tests.support.gateway import FakeSubmissionProducer

FK = "3603010001000100001001"
A_TOKEN, B_TOKEN = "token-team-a-0123456789", "token-team-b-0123456789"
T0 = int(dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp() * 1000)


class FakeSource:
    """A `FeedbackSource` whose index the test fills; ready when told."""

    def __init__(self, index: FeedbackIndex) -> None:
        self.index = index
        self.is_ready = True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def ready(self) -> bool:
        return self.is_ready


def _item(
    serial: int, kind: FeedbackKind = FeedbackKind.NIK_NOT_IN_MASTER, team: str = "team-a", closed: bool = False
) -> FieldFeedback:
    return FieldFeedback(
        item_id=feedback_item_id(FK, kind, serial),
        team=team,
        family_key=FK,
        member_key=f"{FK}-{serial:02d}",
        serial=serial,
        kind=kind,
        status=FeedbackStatus.CLOSED if closed else FeedbackStatus.OPEN,
        raised_revision=1,
        raised_submission_id="S-1",
        closed_revision=2 if closed else None,
        closed_submission_id="S-2" if closed else None,
        message=message_for(kind, serial),
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def source(registry: CollectorRegistry) -> FakeSource:
    return FakeSource(FeedbackIndex())


@pytest.fixture
def client(source: FakeSource, registry: CollectorRegistry) -> Iterator[TestClient]:
    settings = GatewaySettings(tokens={A_TOKEN: "team-a", B_TOKEN: "team-b"})
    app = build_app(settings, producer=FakeSubmissionProducer(), registry=registry, feedback=source)
    # The index counts into the app's metrics, as the Kafka reader's does.
    source.index = FeedbackIndex(app.state.metrics)
    with TestClient(app) as test_client:
        yield test_client


def _get(client: TestClient, token: str, **params: object) -> dict[str, object]:
    answer = client.get("/v1/feedback", params=params, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_team_sees_only_its_items_page_by_page_and_a_change_after_its_cursor(
    client: TestClient, source: FakeSource, registry: CollectorRegistry
) -> None:
    index = source.index
    index.add(0, 5, T0, to_canonical_json(_item(1)))
    index.add(1, 2, T0, to_canonical_json(_item(2)))
    index.add(0, 7, T0, to_canonical_json(_item(3, team="team-b")))
    first = _get(client, A_TOKEN, limit=1)
    assert [i["item_id"] for i in first["items"]] == [f"{FK}/nik_not_in_master/01"]  # type: ignore[index]
    assert first["more"] is True
    second = _get(client, A_TOKEN, limit=1, since=first["next_cursor"])
    assert [i["item_id"] for i in second["items"]] == [f"{FK}/nik_not_in_master/02"]  # type: ignore[index]
    assert second["more"] is False
    assert _get(client, A_TOKEN, since=second["next_cursor"])["items"] == []
    # Team b sees its own item only.
    assert [i["serial"] for i in _get(client, B_TOKEN)["items"]] == [3]  # type: ignore[index]
    # Member 1's item is closed later: it comes again after the cursor, closed.
    index.add(0, 9, T0 + 1000, to_canonical_json(_item(1, closed=True)))
    again = _get(client, A_TOKEN, since=second["next_cursor"])
    assert [(i["serial"], i["status"], i["closed_revision"]) for i in again["items"]] == [(1, "closed", 2)]  # type: ignore[index]
    # An ISO time: items whose latest record is at or after it.
    since = dt.datetime.fromtimestamp((T0 + 500) / 1000, dt.UTC).isoformat()
    assert [i["serial"] for i in _get(client, A_TOKEN, since=since)["items"]] == [1]  # type: ignore[index]
    # Metrics: three opened, one closed; two open now.
    value = registry.get_sample_value
    assert value("regsosek_gateway_feedback_items_total", {"kind": "nik_not_in_master", "transition": "opened"}) == 3
    assert value("regsosek_gateway_feedback_items_total", {"kind": "nik_not_in_master", "transition": "closed"}) == 1
    assert value("regsosek_gateway_feedback_open_items", {"kind": "nik_not_in_master"}) == 2
    assert value("regsosek_gateway_feedback_open_items", {"kind": "dead_in_master"}) == 0


def test_errors_are_problem_json(client: TestClient, source: FakeSource) -> None:
    missing = client.get("/v1/feedback")
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
    bad = client.get("/v1/feedback", params={"since": "not-a-cursor!"}, headers={"Authorization": f"Bearer {A_TOKEN}"})
    assert bad.status_code == 400 and bad.json()["type"] == "urn:regsosek:problem:bad-request"
    naive = client.get(
        "/v1/feedback", params={"since": "2026-01-05T08:00:00"}, headers={"Authorization": f"Bearer {A_TOKEN}"}
    )
    assert naive.status_code == 400
    too_many = client.get("/v1/feedback", params={"limit": 5000}, headers={"Authorization": f"Bearer {A_TOKEN}"})
    assert too_many.status_code == 422
    source.is_ready = False
    not_ready = client.get("/v1/feedback", headers={"Authorization": f"Bearer {A_TOKEN}"})
    assert not_ready.status_code == 503 and not_ready.headers["Retry-After"] == "1"
    assert client.get("/readyz").status_code == 503


def test_an_invalid_record_is_counted_and_skipped() -> None:
    index = FeedbackIndex()
    index.add(0, 1, T0, b'{"not": "feedback"}')
    index.add(0, 2, T0, None)
    assert len(index) == 0 and index.rejected == 1


def test_cursor_round_trip() -> None:
    cursor = Cursor({0: 5, 3: 9}, T0)
    assert Cursor.parse(cursor.encode()) == cursor
    assert Cursor.parse(None) == Cursor({})
