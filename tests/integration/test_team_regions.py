"""Team tokens bound to regions, family owners and revision bounds against the REAL broker.

The gateway (in process, real Kafka producer) posts to a test copy of the submissions topic and the
linker service (`python -m services.linker`, fake engine) consumes it:
- a post outside the token's regions is answered 403 and nothing reaches the topic;
- revisions 2**31 and 10**30 are answered 422 and nothing reaches the topic;
- a second team granted the same district posts a revision of a family the first team owns: 202 at the
  gateway (its region), dead letter `foreign_team` at the linker, and the owner's next revision is
  still linked;
- the owner's revision 2**31-1 (valid, but a jump past the step limit) is dead-lettered `revision_jump`.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from contracts.submission import MAX_REVISION
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.kafka.io import compacted_state, read_topic
from tests.support.linker import FAM_A, MASTER, family_a, raw_json

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker
from tests.support.linker_service import Topics, start_worker
from tests.support.polling import records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


OWNER_TOKEN = "owner-token-team-3603-a-0123456789"
NEIGHBOUR_TOKEN = "neighbour-token-team-3603-b-01234"
OTHER_TOKEN = "other-token-team-3171-c-0123456789"
TOKENS = {
    OWNER_TOKEN: {"team": "team-3603-a", "regions": ["3603"]},
    NEIGHBOUR_TOKEN: {"team": "team-3603-b", "regions": [FAM_A[:7]]},  # overlaps the owner's district
    OTHER_TOKEN: {"team": "team-3171-c", "regions": ["3171"]},
}


@pytest.fixture()
def gateway(kafka_broker: RunningBroker, topics: Topics) -> Iterator[TestClient]:
    settings = GatewaySettings(bootstrap=kafka_broker.bootstrap, topic=topics.submissions, tokens=TOKENS)
    with TestClient(build_app(settings)) as client:
        yield client


def _post(client: TestClient, token: str, body: bytes) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return client.post("/v1/submissions", content=body, headers=headers).status_code


def test_regions_owners_and_revision_bounds(
    kafka_broker: RunningBroker, topics: Topics, gateway: TestClient, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    # Refused at the gateway: nothing is produced.
    assert _post(gateway, OTHER_TOKEN, raw_json(family_a(1))) == 403
    for revision in (2**31, 10**30):
        assert _post(gateway, OWNER_TOKEN, raw_json(dict(family_a(1), revision=revision))) == 422
    assert read_topic(bootstrap, topics.submissions) == []

    # Accepted at the gateway, judged by the linker against the family's owner and current revision.
    foreign = raw_json(dict(family_a(2), submission_id="S-FOREIGN-r2", head_name="Budi Santoso"))
    jump = raw_json(dict(family_a(2), revision=MAX_REVISION, submission_id="S-JUMP"))
    posts = [
        (OWNER_TOKEN, raw_json(family_a(1))),
        (NEIGHBOUR_TOKEN, foreign),
        (OWNER_TOKEN, jump),
        (OWNER_TOKEN, raw_json(family_a(2))),
    ]
    assert [_post(gateway, token, body) for token, body in posts] == [202, 202, 202, 202]
    assert len(read_topic(bootstrap, topics.submissions)) == 4

    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    worker = start_worker(bootstrap, topics, tmp_path / "state", master_file, f"linker-{uuid.uuid4().hex[:6]}")
    workers.append(worker)
    dead = records_until(bootstrap, topics.dlq, lambda rs: len(rs) >= 2, worker)
    families = records_until(
        bootstrap,
        topics.families,
        lambda rs: FAM_A in compacted_state(rs) and json.loads(compacted_state(rs)[FAM_A])["revision"] == 2,
        worker,
    )

    letters = sorted((DEAD_LETTER_ADAPTER.validate_json(r.value or b"") for r in dead), key=lambda d: d.source_offset)
    assert [(d.reason, d.payload, d.key) for d in letters] == [
        (DeadLetterReason.FOREIGN_TEAM, foreign, FAM_A),
        (DeadLetterReason.REVISION_JUMP, jump, FAM_A),
    ]
    assert "belongs to team 'team-3603-a'" in letters[0].detail
    # The family record of revision 2 is the owner's: the foreign one (another head name) never linked.
    family = json.loads(compacted_state(families)[FAM_A])
    assert (family["revision"], family["submission_id"]) == (2, family_a(2)["submission_id"])
    assert [json.loads(r.value or b"{}")["revision"] for r in families if r.key == FAM_A.encode()][-1] == 2
    assert worker.stop() == 0, worker.log_tail()
    assert len(read_topic(bootstrap, topics.dlq)) == 2
