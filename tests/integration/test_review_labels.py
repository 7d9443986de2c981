"""`regsosek review labels`: labelled pairs from decisions read back from the real broker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from contracts.review_decisions import ReviewOutcome
from services.cli import _register, app
from services.kafka.io import JsonProducer
from tests.review_broker import review_settings
from tests.support.review_decisions import KEY, KEY2, T1, A, B, C, decision

if TYPE_CHECKING:
    from tests.support.broker import RunningBroker

pytestmark = pytest.mark.broker


def test_labels_file_from_the_decisions_topic(kafka_broker: RunningBroker, tmp_path: Path) -> None:
    settings = review_settings(kafka_broker.bootstrap, tmp_path)
    accept = decision(T1, 0, ReviewOutcome.ACCEPT, chosen=B)
    undo = decision(T1, 1, ReviewOutcome.UNDO, revokes=accept.decision_id)
    again = decision(T1, 2, ReviewOutcome.ACCEPT, chosen=C, reviewer="budi")
    t2 = f"{KEY2}/r1"
    skip = decision(t2, 0, ReviewOutcome.SKIP, member_key=KEY2)
    new = decision(t2, 1, ReviewOutcome.NEW_PERSON, shown=(A,), member_key=KEY2)
    with JsonProducer(settings.bootstrap) as producer:
        producer.send_many(settings.decisions_topic, [(d.member_key, d) for d in (accept, undo, again, skip, new)])
        producer.send(settings.decisions_topic, KEY, b'{"not": "a decision"}')
        producer.send(settings.decisions_topic, KEY, again)  # re-delivered
    _register()
    out = tmp_path / "labels.parquet"
    result = CliRunner().invoke(
        app,
        ["review", "labels", "--out", str(out), "--bootstrap", settings.bootstrap, "--topic", settings.decisions_topic],
    )
    assert result.exit_code == 0, result.output
    assert "4 labelled pairs (1 matches, 3 non-matches) of 2 members from 6 decisions" in result.stdout
    rows = pq.read_table(out).to_pylist()
    assert rows == [
        {
            "record_id": KEY,
            "master_record_id": A,
            "label": 0,
            "decision_id": again.decision_id,
            "task_id": T1,
            "reviewer_role": "reviewer",
        },
        {
            "record_id": KEY,
            "master_record_id": C,
            "label": 1,
            "decision_id": again.decision_id,
            "task_id": T1,
            "reviewer_role": "reviewer",
        },
        {
            "record_id": KEY,
            "master_record_id": B,
            "label": 0,
            "decision_id": again.decision_id,
            "task_id": T1,
            "reviewer_role": "reviewer",
        },
        {
            "record_id": KEY2,
            "master_record_id": A,
            "label": 0,
            "decision_id": new.decision_id,
            "task_id": t2,
            "reviewer_role": "reviewer",
        },
    ]
    again_run = CliRunner().invoke(
        app,
        ["review", "labels", "--out", str(out), "--bootstrap", settings.bootstrap, "--topic", settings.decisions_topic],
    )
    assert again_run.exit_code == 2 and "already exists" in again_run.output
    missing = CliRunner().invoke(
        app,
        [
            "review",
            "labels",
            "--out",
            str(tmp_path / "x.csv"),
            "--bootstrap",
            settings.bootstrap,
            "--topic",
            "no.such.topic",
            "--timeout",
            "5",
        ],
    )
    assert missing.exit_code == 2 and "cannot read no.such.topic" in missing.output
