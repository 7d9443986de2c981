"""The linker with the REAL engine on a small generated world, against the REAL broker.

A 2,000-person world is generated and a members model trained (a few seconds), the linker runs as
`python -m services.linker` with that world and model, and all of the world's submissions are streamed.
Every valid member must end with exactly one current record; the records must be byte-identical to
the same pipeline run in-process; precision and recall against the truth file must be high.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer

from contracts.decode import decode_family_submission
from integration.ids import PersonIds
from linkage.records import family_key_string
from services.kafka.io import compacted_state
from services.linker.engine_adapter import load_village_crosswalk
from services.linker.engine_link import EngineMemberLinker
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import DEV_PERSON_ID_KEY, LinkerSettings
from services.linker.store import LinkStore
from tests.support.broker import RunningBroker
from tests.support.linker_service import Topics, start_worker
from tests.support.linking import link_batch
from tests.support.polling import records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _expected(world: Path, model: Path, lines: list[bytes], keys: list[bytes]) -> dict[str, dict[str, bytes]]:
    settings = LinkerSettings(world_dir=world, model_path=model)
    pipeline = SubmissionLinker(
        EngineMemberLinker.from_files(world, model, cache_dir=world / "cache"),
        PersonIds(DEV_PERSON_ID_KEY.encode()),
        OutputTopics("m", "f", "r"),
        village_crosswalk=load_village_crosswalk(settings),
    )
    store = LinkStore(":memory:")
    out: dict[str, dict[str, bytes]] = {"m": {}, "f": {}, "r": {}}
    for line, key in zip(lines, keys, strict=True):
        result = link_batch(pipeline, store, [decode_family_submission(line, key=key)])
        store.apply(result.update)
        for rec in result.records:
            assert rec.key is not None
            if rec.value is None:
                out[rec.topic].pop(rec.key.decode(), None)
            else:
                out[rec.topic][rec.key.decode()] = rec.value
    return out


def test_linker_with_the_real_engine_links_a_generated_world(
    kafka_broker: RunningBroker,
    topics: Topics,
    workers: list[LinkerProcess],
    world_and_model: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    world, model = world_and_model
    lines = [ln.encode() for ln in (world / "submissions.jsonl").read_text().splitlines() if ln.strip()]
    keys = [family_key_string(json.loads(ln)["family_key"]).encode() for ln in lines]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for future in [producer.send(topics.submissions, key=k, value=v) for k, v in zip(keys, lines, strict=True)]:
            future.get(timeout=30)
    finally:
        producer.close()
    expected = _expected(world, model, lines, keys)

    worker = start_worker(
        bootstrap,
        topics,
        tmp_path / "state",
        None,
        f"linker-{uuid.uuid4().hex[:6]}",
        extra_env={"REGSOSEK_LINKER_WORLD_DIR": str(world), "REGSOSEK_LINKER_MODEL_PATH": str(model)},
    )
    workers.append(worker)
    families = records_until(bootstrap, topics.families, lambda rs: compacted_state(rs) == expected["f"], worker, 180.0)
    members = records_until(bootstrap, topics.members, lambda rs: compacted_state(rs) == expected["m"], worker, 60.0)
    assert len(compacted_state(families)) == len({k for k in keys})
    assert compacted_state(members) == expected["m"]

    # Every submitted member of each family's latest revision has exactly one current record.
    latest: dict[str, Any] = {}
    for line in lines:
        doc = json.loads(line)
        key = family_key_string(doc["family_key"])
        if key not in latest or doc["revision"] >= latest[key]["revision"]:
            latest[key] = doc
    member_keys = {f"{k}-{m['serial']:02d}" for k, d in latest.items() for m in d["members"]}
    assert set(compacted_state(members)) == member_keys

    truth = {
        r["member_key"]: r["true_nik"]
        for r in pq.read_table(world / "truth.parquet").to_pylist()
        if r["source"] == "member"
    }
    tp = fp = fn = 0
    for key, value in compacted_state(members).items():
        rec = json.loads(value)
        if rec["matched_nik"] is not None:
            tp, fp = (tp + 1, fp) if rec["matched_nik"] == truth.get(key) else (tp, fp + 1)
        elif truth.get(key) is not None:
            fn += 1
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"real engine via the broker: {len(member_keys)} members, precision {precision:.4f}, recall {recall:.4f}")
    assert precision >= 0.99 and recall >= 0.95
    assert worker.stop() == 0, worker.log_tail()
