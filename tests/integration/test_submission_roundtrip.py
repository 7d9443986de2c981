"""FamilySubmission and DeadLetter messages through the real broker, byte for byte."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from contracts.dead_letter import DeadLetter, DeadLetterReason
from contracts.decode import ContractViolation, decode_family_submission
from contracts.partitioning import partition_for
from contracts.submission import FamilySubmission
from contracts.topics import SUBMISSIONS, SUBMISSIONS_DLQ
from services.kafka.io import JsonProducer, read_topic
from tests.integration.samples import raw, submission, submission_dict

if TYPE_CHECKING:
    from tests.support.broker import ProvisionedBroker

pytestmark = pytest.mark.broker


def test_family_submissions_round_trip_exactly(kafka_topics: ProvisionedBroker) -> None:
    sent = [submission(family_serial=n) for n in range(101, 111)]
    sent.append(submission(family_serial=101, revision=2, head_name="Ahmad Fauzi S.Pd"))
    with JsonProducer(kafka_topics.bootstrap) as producer:
        delivered = producer.send_many(SUBMISSIONS, [(s.kafka_key, s) for s in sent])
    assert len(delivered) == len(sent)
    # Both revisions of one family land on one partition, in the order they were sent.
    assert delivered[0].partition == delivered[-1].partition
    assert delivered[0].offset < delivered[-1].offset

    where = {(d.partition, d.offset) for d in delivered}
    records = [r for r in read_topic(kafka_topics.bootstrap, SUBMISSIONS) if (r.partition, r.offset) in where]
    assert len(records) == len(sent)
    by_id = {FamilySubmission.model_validate_json(r.value or b"").submission_id: r for r in records}
    assert set(by_id) == {s.submission_id for s in sent}
    for s, d in zip(sent, delivered, strict=True):
        record = by_id[s.submission_id]
        assert (record.partition, record.offset) == (d.partition, d.offset)
        assert record.key == s.kafka_key == s.family_key.key.encode()
        assert record.value == s.model_dump_json().encode()  # exactly the bytes that were sent
        assert FamilySubmission.model_validate_json(record.value or b"") == s
    # The families are of one district: one partition, the one the catalogue's rule names.
    assert {d.partition for d in delivered} == {partition_for(sent[0].kafka_key, 4)}
    assert len({s.family_key.key for s in sent}) == 10


def test_unknown_member_nik_and_partial_birth_date_survive_the_trip(kafka_topics: ProvisionedBroker) -> None:
    s = submission(family_serial=201)
    with JsonProducer(kafka_topics.bootstrap) as producer:
        where = producer.send(SUBMISSIONS, s.kafka_key, s)
    record = next(
        r
        for r in read_topic(kafka_topics.bootstrap, SUBMISSIONS)
        if (r.partition, r.offset) == (where.partition, where.offset)
    )
    back = decode_family_submission(record.value, key=record.key)
    assert back.members[1].nik is None
    assert back.members[1].birth_date is not None and back.members[1].birth_date.year == 1984
    assert back.members[1].birth_date.day is None and back == s


BAD_INPUTS = [
    ("not_json", b"{this is not json", DeadLetterReason.NOT_JSON),
    (
        "bad_nik",
        raw(submission_dict(301, members=[{**submission_dict()["members"][0], "nik": "12345"}])),
        DeadLetterReason.INVALID_NIK,
    ),
    ("v9", raw(submission_dict(302, schema_version="9")), DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
]


def test_dead_letter_envelope_round_trip(kafka_topics: ProvisionedBroker) -> None:
    bootstrap = kafka_topics.bootstrap
    # The raw input goes to a scratch topic so the shared submissions topic stays valid for other tests.
    raw_topic = "test.submissions.raw.v1"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(raw_topic, 1, 1)])
    finally:
        admin.close()
    key = b"3603010001000100001301"
    with JsonProducer(bootstrap) as producer:
        producer.send_many(raw_topic, [(key, payload) for _, payload, _ in BAD_INPUTS])
        dead_letters = []
        for record in read_topic(bootstrap, raw_topic):
            with pytest.raises(ContractViolation) as rejected:
                decode_family_submission(record.value, key=record.key)
            dead_letters.append(
                rejected.value.dead_letter(
                    payload=record.value,
                    source_topic=record.topic,
                    source_partition=record.partition,
                    source_offset=record.offset,
                    key=record.key,
                )
            )
        producer.send_many(SUBMISSIONS_DLQ, [(d.key, d) for d in dead_letters])

    dlq = [r for r in read_topic(bootstrap, SUBMISSIONS_DLQ) if raw_topic.encode() in (r.value or b"")]
    assert len(dlq) == len(BAD_INPUTS)
    for (_, payload, reason), sent, record in zip(BAD_INPUTS, dead_letters, dlq, strict=True):
        back = DeadLetter.model_validate_json(record.value or b"")
        assert record.value == sent.model_dump_json().encode()
        assert back == sent
        assert back.reason == reason
        assert back.payload == payload  # the original bytes, unchanged
        assert (back.source_topic, back.source_partition) == (raw_topic, 0)
        assert record.key == key
    assert [DeadLetter.model_validate_json(r.value or b"").source_offset for r in dlq] == [0, 1, 2]
    assert "12345" not in dead_letters[1].detail  # the rejected NIK is not echoed
