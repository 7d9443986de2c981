"""The linker service against the REAL broker: `python -m services.linker` as a subprocess, fake engine.

Each test provisions its own copies of the catalogue topics (same partitions and policies, unique
names) so no other test's records can reach the linker. The expected member/family/review records are
computed by the same pipeline in-process with the same fake engine: the service must produce exactly
those bytes under exactly those keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contracts import events as ce
from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetterReason
from contracts.decode import decode_family_submission
from integration.ids import PersonIds
from services.kafka.events import cloud_event_headers, timestamp_ms
from services.kafka.io import compacted_state, read_topic
from services.kafka.record import KafkaRecord
from services.linker.deadletter import OVERSIZED_PREFIX_BYTES
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import DEV_PERSON_ID_KEY
from services.linker.store import LinkStore
from tests.support.broker import RunningBroker
from tests.support.linker import (
    FAM_A,
    FAM_B,
    FAM_C,
    MASTER,
    FakeMemberLinker,
    family_a,
    family_b,
    family_c,
    nik_for,
    raw_json,
)
from tests.support.linker_service import Topics, start_worker
from tests.support.linking import link_batch
from tests.support.polling import records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _bad_messages() -> list[tuple[bytes | None, bytes | None, DeadLetterReason]]:
    good = family_b()
    wrong_nik = json.loads(raw_json(good))
    wrong_nik["members"][0]["nik"] = "99"
    dup = family_a(1)
    dup["members"][1]["serial"] = 1  # type: ignore[index]
    v2 = dict(good, schema_version="2")
    no_members = {k: v for k, v in good.items() if k != "members"}
    return [
        (FAM_B.encode(), b"not json at all", DeadLetterReason.NOT_JSON),
        (FAM_B.encode(), b"\xff\xfe\xfd", DeadLetterReason.INVALID_UTF8),
        (FAM_B.encode(), b"", DeadLetterReason.EMPTY),
        (FAM_B.encode(), b'{"pad":"' + b"x" * 2_000_000 + b'"}', DeadLetterReason.TOO_LARGE),
        (None, raw_json(good), DeadLetterReason.MISSING_KEY),
        (FAM_C.encode(), raw_json(good), DeadLetterReason.KEY_MISMATCH),
        (FAM_B.encode(), raw_json(v2), DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
        (FAM_B.encode(), raw_json(wrong_nik), DeadLetterReason.INVALID_NIK),
        (FAM_A.encode(), raw_json(dup), DeadLetterReason.DUPLICATE_MEMBER_SERIAL),
        (FAM_B.encode(), raw_json(no_members), DeadLetterReason.SCHEMA_VIOLATION),
    ]


def _at_least(count: int) -> Callable[[list[KafkaRecord]], bool]:
    return lambda records: len(records) >= count


def _latest(records: list[KafkaRecord]) -> dict[str, bytes | None]:
    latest: dict[str, bytes | None] = {}
    for r in records:  # one key lives on one partition, so offset order is the key's order
        assert r.key is not None
        latest[r.key.decode()] = r.value
    return latest


def _stamped(r: KafkaRecord) -> tuple[bytes, tuple[tuple[str, bytes], ...], int | None]:
    return (r.value or b"", r.headers, r.timestamp_ms)


def _check_cloud_events(
    members: list[KafkaRecord],
    reviews: list[KafkaRecord],
    families: list[KafkaRecord],
    dead: list[KafkaRecord],
    topics: Topics,
) -> None:
    """Every record carries the CloudEvents headers (binary mode) with its event time as the timestamp."""
    kinds = ((members, ce.MEMBER), (reviews, ce.REVIEW_TASK), (families, ce.FAMILY), (dead, ce.DEAD_LETTER))
    for records, kind in kinds:
        assert records
        for r in records:
            if r.value is None:  # a member dropped by revision 2 (if r1 had a batch of its own): no data
                when = dt.datetime.fromisoformat(dict(r.headers)["ce_time"].decode())
                assert sorted(dict(r.headers)) == ["ce_id", "ce_source", "ce_specversion", "ce_time", "ce_type"]
                assert r.timestamp_ms == timestamp_ms(when)
                continue
            value = json.loads(r.value)
            # the event time: the submission's enumerated_at, or (a dead letter) the source record's time
            when = dt.datetime.fromisoformat(value.get("event_time") or value["dead_lettered_at"])
            assert r.headers == tuple(
                cloud_event_headers(kind, source=ce.LINKER_SOURCE, topic=r.topic, key=r.key, value=r.value, time=when)
            )
            assert r.timestamp_ms == timestamp_ms(when)
    a1 = next(r for r in members if r.key == f"{FAM_A}-01".encode() and b'"revision":2' in (r.value or b""))
    headers = dict(a1.headers)
    assert {k: v for k, v in headers.items() if k != "ce_id"} == {
        "ce_dataschema": b"urn:regsosek:contract:linked_member.v1",
        "ce_source": b"urn:regsosek:service:linker",
        "ce_specversion": b"1.0",
        "ce_time": b"2022-10-20T02:15:00Z",  # enumerated_at 09:15 +07:00
        "ce_type": b"id.go.bps.regsosek.linkage.member.v1",
        "content-type": b"application/json",
    }
    assert len(headers["ce_id"]) == 32


def _expected() -> dict[str, dict[str, bytes]]:
    """What the service must publish: the pipeline applied to the valid submissions in order."""
    store = LinkStore(":memory:")
    pipeline = SubmissionLinker(
        FakeMemberLinker.of(MASTER), PersonIds(DEV_PERSON_ID_KEY.encode()), OutputTopics("m", "f", "r")
    )
    out: dict[str, dict[str, bytes]] = {"m": {}, "f": {}, "r": {}}
    for key, doc in ((FAM_A, family_a(1)), (FAM_B, family_b()), (FAM_A, family_a(2)), (FAM_C, family_c())):
        result = link_batch(pipeline, store, [decode_family_submission(raw_json(doc), key=key.encode())])
        store.apply(result.update)
        for rec in result.records:
            assert rec.key is not None
            if rec.value is None:
                out[rec.topic].pop(rec.key.decode(), None)
            else:
                out[rec.topic][rec.key.decode()] = rec.value
    return out


def test_linker_links_dead_letters_and_is_idempotent(
    kafka_broker: RunningBroker, topics: Topics, workers: list[LinkerProcess], tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    master_file = tmp_path / "master.json"
    master_file.write_text(json.dumps([dataclasses.asdict(p) for p in MASTER]))
    bad = _bad_messages()
    raw_producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4_194_304)
    sequence: list[tuple[bytes | None, bytes | None]] = [(FAM_A.encode(), raw_json(family_a(1)))]
    sequence += [(key, value) for key, value, _ in bad[:5]]
    sequence += [(FAM_B.encode(), raw_json(family_b()))]
    sequence += [(key, value) for key, value, _ in bad[5:]]
    sequence += [
        (FAM_A.encode(), raw_json(family_a(2))),
        (FAM_A.encode(), raw_json(family_a(1))),  # late r1
        (FAM_C.encode(), raw_json(family_c())),
    ]
    try:
        for future in [raw_producer.send(topics.submissions, key=k, value=v) for k, v in sequence]:
            future.get(timeout=30)
    finally:
        raw_producer.close()
    expected = _expected()

    state = tmp_path / "state"
    worker = start_worker(bootstrap, topics, state, master_file, f"linker-{uuid.uuid4().hex[:6]}")
    workers.append(worker)
    # Done when every family's latest revision is out and every bad message was dead-lettered. (How many
    # intermediate records appear depends on batching: revisions 1 and 2 of A in one batch -> only 2.)
    families = records_until(bootstrap, topics.families, lambda rs: compacted_state(rs) == expected["f"], worker)
    dead = records_until(bootstrap, topics.dlq, _at_least(len(bad)), worker)
    members = records_until(bootstrap, topics.members, lambda rs: compacted_state(rs) == expected["m"], worker)
    reviews = read_topic(bootstrap, topics.review)

    assert sorted(expected["m"]) == [f"{FAM_A}-01", f"{FAM_A}-02", f"{FAM_B}-01", f"{FAM_C}-01"]  # r2
    assert compacted_state(reviews) == expected["r"]
    assert json.loads(expected["r"][f"{FAM_A}-02"])["task_id"] == f"{FAM_A}-02/r2"
    a1 = json.loads(expected["m"][f"{FAM_A}-01"])
    assert (a1["revision"], a1["decision"], a1["matched_nik"], a1["sectoral"]["dtks_id"]) == (
        2,
        "linked",
        nik_for(11),
        "DTKS-11",
    )
    fam_b = json.loads(expected["f"][FAM_B])
    assert fam_b["flags"] == {
        "kk_mismatch": True,
        "members_not_in_master": False,
        "deceased_in_master_present_in_survey": True,
    }
    # The late revision 1 of A never overwrote revision 2: no family record of A has revision 1 after r2.
    a_revisions = [json.loads(r.value or b"{}")["revision"] for r in families if r.key == FAM_A.encode()]
    assert a_revisions[-1] == 2 and a_revisions == sorted(a_revisions)

    letters = [DEAD_LETTER_ADAPTER.validate_json(r.value or b"") for r in dead]
    assert len(letters) == len(bad)
    assert sorted(dl.reason.value for dl in letters) == sorted(reason.value for *_, reason in bad)
    by_reason = {dl.reason: dl for dl in letters}
    for key, value, reason in bad:
        dl = by_reason[reason]
        assert dl.payload == (value or b"")[:OVERSIZED_PREFIX_BYTES], reason
        assert dl.key == (key.decode() if key else None)
        assert dl.source_topic == topics.submissions
    _check_cloud_events(members, reviews, families, dead, topics)
    # Outputs were acknowledged before offsets were committed: a clean stop exits 0.
    assert worker.stop() == 0, worker.log_tail()

    # Replay the whole topic with a new consumer group and the same link store: the late revision 1 of A
    # is stale again, everything else is re-published byte for byte under the same keys.
    replay = start_worker(bootstrap, topics, state, master_file, f"replay-{uuid.uuid4().hex[:6]}")
    workers.append(replay)
    first = {
        t: {(r.partition, r.offset) for r in recs}
        for t, recs in (
            (topics.members, members),
            (topics.families, families),
            (topics.review, reviews),
            (topics.dlq, dead),
        )
    }
    for topic, before, added in (
        (topics.members, members, 4),
        (topics.families, families, 3),
        (topics.review, reviews, 1),
        (topics.dlq, dead, len(bad)),
    ):
        after = records_until(bootstrap, topic, _at_least(len(before) + added), replay)
        new = [r for r in after if (r.partition, r.offset) not in first[topic]]
        assert len(new) == added, topic
        if topic == topics.dlq:
            assert sorted(_stamped(r) for r in new) == sorted(_stamped(r) for r in before)
        else:
            old_latest = {r.key: _stamped(r) for r in before}  # offset order: the last per key wins
            # value, CloudEvents headers and Kafka timestamp: all byte-identical on the replay
            assert {r.key: _stamped(r) for r in new} == {r.key: old_latest[r.key] for r in new}
    assert replay.stop() == 0, replay.log_tail()
