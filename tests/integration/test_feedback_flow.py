"""Field feedback end to end on the REAL broker: gateway -> linker (fake engine) -> field.feedback.v1 ->
the gateway's feedback index -> GET /v1/feedback; a corrected revision closes the item."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from contracts.feedback import FIELD_FEEDBACK_ADAPTER, FieldFeedback
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.kafka.io import read_topic
from tests.support.broker import RunningBroker
from tests.support.linker import FAMILY_KEY, member_payload, nik_for, submission_payload
from tests.support.polling import poll_until
from tools.pipeline.linker_process import LinkerProcess, provision_private_topics

KK = "3603121705150003"
AHMAD, SITI = nik_for(2), nik_for(3, female=True)
UNKNOWN = nik_for(9)
A_TOKEN, B_TOKEN = "feedback-token-team-a-0001", "feedback-token-team-b-0001"


def _body(ahmad_nik: str, revision: int) -> bytes:
    members = [
        member_payload(1, "Ahmad Fauzi", ahmad_nik),
        member_payload(2, "Siti Aminah", SITI, sex=2, relationship=2),
    ]
    return json.dumps(submission_payload(members, revision=revision, kk_number=KK)).encode()


def _feedback_topic(bootstrap: str, topic: str) -> list[FieldFeedback]:
    return [FIELD_FEEDBACK_ADAPTER.validate_json(r.value or b"") for r in read_topic(bootstrap, topic)]


def _get(client: TestClient, token: str, since: str | None = None) -> dict[str, Any]:
    params = {"since": since} if since else {}
    answer = client.get("/v1/feedback", params=params, headers={"Authorization": f"Bearer {token}"})
    return {"status": answer.status_code, **answer.json()}


def test_an_item_reaches_its_team_only_and_a_corrected_revision_closes_it(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    topics = provision_private_topics(bootstrap, f"fb{uuid.uuid4().hex[:8]}")
    master = tmp_path / "master.json"
    master.write_text(
        json.dumps(
            [
                {"nik": AHMAD, "full_name": "Ahmad Fauzi", "kk_number": KK},
                {"nik": SITI, "full_name": "Siti Aminah", "kk_number": KK},
            ]
        )
    )
    linker = LinkerProcess(
        bootstrap=bootstrap,
        group=f"fb-{uuid.uuid4().hex[:8]}",
        state_dir=tmp_path / "linker",
        topics=topics,
        fake_master=master,
    )
    settings = GatewaySettings(
        bootstrap=bootstrap,
        topic=topics.submissions,
        feedback_topic=topics.feedback,
        tokens={A_TOKEN: {"team": "team-a", "regions": ["3603"]}, B_TOKEN: {"team": "team-b", "regions": ["3603"]}},
    )
    try:
        with TestClient(build_app(settings)) as client:
            poll_until(lambda: client.get("/readyz").status_code == 200, 30, lambda: "gateway never ready")
            headers = {"Authorization": f"Bearer {A_TOKEN}", "Content-Type": "application/json"}
            assert client.post("/v1/submissions", content=_body(UNKNOWN, 1), headers=headers).status_code == 202
            item_id = f"{FAMILY_KEY}/nik_not_in_master/01"

            raised = poll_until(lambda: _feedback_topic(bootstrap, topics.feedback), 90, linker.log_tail)
            assert [(f.item_id, f.team, f.status.value, f.raised_revision) for f in raised] == [
                (item_id, "team-a", "open", 1)
            ]
            (record,) = read_topic(bootstrap, topics.feedback)
            ce = dict(record.headers)
            assert (ce["ce_type"], ce["ce_dataschema"], ce["ce_source"]) == (
                b"id.go.bps.regsosek.field.feedback.v1",
                b"urn:regsosek:contract:field_feedback.v1",
                b"urn:regsosek:service:linker",
            )
            assert ce["ce_time"] == b"2022-10-20T02:15:00Z"  # the submission's enumerated_at
            page = poll_until(lambda: (p := _get(client, A_TOKEN))["items"] and p, 30, lambda: "never served")
            assert page["status"] == 200
            assert [(i["item_id"], i["status"]) for i in page["items"]] == [(item_id, "open")]
            other = _get(client, B_TOKEN)
            assert (other["status"], other["items"]) == (200, [])  # another team sees none of it

            # Revision 2 corrects the NIK: the item is closed on the topic and after the team's cursor.
            assert client.post("/v1/submissions", content=_body(AHMAD, 2), headers=headers).status_code == 202
            closed = poll_until(
                lambda: [f for f in _feedback_topic(bootstrap, topics.feedback) if f.status == "closed"],
                90,
                linker.log_tail,
            )
            assert [(f.item_id, f.raised_revision, f.closed_revision) for f in closed] == [(item_id, 1, 2)]
            later = poll_until(
                lambda: (p := _get(client, A_TOKEN, page["next_cursor"]))["items"] and p, 30, "closing never served"
            )
            got = [(i["item_id"], i["status"], i["closed_revision"]) for i in later["items"]]
            assert got == [(item_id, "closed", 2)]
            metrics = client.get("/metrics").text
            assert 'regsosek_gateway_feedback_open_items{kind="nik_not_in_master"} 0.0' in metrics
            assert 'regsosek_gateway_feedback_items_total{kind="nik_not_in_master",transition="closed"} 1.0' in metrics
    finally:
        linker.stop()
