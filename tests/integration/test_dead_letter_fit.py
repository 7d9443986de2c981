"""Dead letters of 700 KB - 1 MiB payloads against the REAL broker: produced, and the linker keeps going.

Before the bound, an invalid payload above about 786 KB became a dead letter the broker (default record
limit, as every catalogue topic has) refused, and the linker crash-looped on it. Here the submissions
topic and the population change topic take records up to 4 MiB (what got them there is not the point),
the dead-letter topic keeps the broker's default limit, and the linker (updates enabled, fake engine)
must dead-letter every such payload on both paths and still link the valid submission that follows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import ConfigResource, KafkaAdminClient

from contracts.dead_letter import DEAD_LETTER_ADAPTER, DeadLetter
from contracts.topics import (
    BPJS_CHANGES,
    DTKS_CHANGES,
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    MAX_RECORD_BYTES,
    POPULATION_CHANGES,
    REVIEW,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    UPDATES,
    topic_spec,
)
from services.kafka.topics import provision
from tests.support.broker import RunningBroker
from tests.support.linker import FAMILY_KEY, FakeMasterPerson, member_payload, nik_for, submission_payload
from tests.support.polling import records_until
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SIZES = [700_000, 786_000, 900_000, 1_048_576]
PRIVATE = (
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    LINKED_MEMBERS,
    LINKED_FAMILIES,
    REVIEW,
    POPULATION_CHANGES,
    DTKS_CHANGES,
    BPJS_CHANGES,
    UPDATES,
)  # the topics the test renames


def _invalid(size: int) -> bytes:
    head = b'{"schema_version":"1","pad":"'
    return head + b"y" * (size - len(head) - 2) + b'"}'


def test_dead_letters_of_700_kb_to_1_mib_fit_and_the_linker_links_the_next_submission(
    kafka_broker: RunningBroker, tmp_path: Path
) -> None:
    bootstrap: str = kafka_broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    names = {src: f"t{tag}.{src}" for src in PRIVATE}
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(s), name=d) for s, d in names.items()]).differences
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        big = {"max.message.bytes": "4194304"}
        admin.alter_configs([ConfigResource("TOPIC", names[t], configs=big) for t in (SUBMISSIONS, POPULATION_CHANGES)])
    finally:
        admin.close()

    bad_submissions = [(FAMILY_KEY.encode(), _invalid(n)) for n in SIZES]
    bad_changes = [(f"ref-{n}".encode(), _invalid(n)) for n in SIZES]
    nik = nik_for(11)
    valid = json.dumps(submission_payload([member_payload(1, "Ahmad Fauzi", nik)])).encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4_194_304)
    try:
        sends = [producer.send(names[POPULATION_CHANGES], key=k, value=v) for k, v in bad_changes]
        sends += [producer.send(names[SUBMISSIONS], key=k, value=v) for k, v in bad_submissions]
        sends.append(producer.send(names[SUBMISSIONS], key=FAMILY_KEY.encode(), value=valid))
        for future in sends:
            future.get(timeout=30)
    finally:
        producer.close()

    master = tmp_path / "master.json"
    master.write_text(json.dumps([dataclasses.asdict(FakeMasterPerson(nik, "Ahmad Fauzi", "3603121705150003"))]))
    linker = LinkerProcess(
        bootstrap=bootstrap,
        group=f"fit-{tag}",
        state_dir=tmp_path / "state",
        topics=names,
        fake_master=master,
        extra_env={"REGSOSEK_LINKER_UPDATES_ENABLED": "true"},
        log_path=tmp_path / "linker.log",
    )
    try:
        expected = len(SIZES) * 2
        dead = records_until(bootstrap, names[SUBMISSIONS_DLQ], lambda rs: len(rs) >= expected, linker, 120)
        members = records_until(bootstrap, names[LINKED_MEMBERS], lambda rs: len(rs) >= 1, linker, 120)
        linker.check_running()
    finally:
        code = linker.stop(60)

    assert [(r.key, json.loads(r.value or b"")["decision"]) for r in members] == [
        (f"{FAMILY_KEY}-01".encode(), "linked")
    ]
    # The sizes are distinct: (source topic, original size) names each bad record.
    letters: dict[tuple[str, int], DeadLetter] = {}
    for r in dead:
        letter = DEAD_LETTER_ADAPTER.validate_json(r.value or b"")
        letters[(letter.source_topic, letter.original_size or len(letter.payload))] = letter
        assert len(r.value or b"") + len(r.key or b"") <= MAX_RECORD_BYTES
    originals = {(names[SUBMISSIONS], len(v)): v for _, v in bad_submissions}
    originals |= {(names[POPULATION_CHANGES], len(v)): v for _, v in bad_changes}
    assert len(dead) == len(originals) and sorted(letters) == sorted(originals)  # one per bad record
    for position, value in originals.items():
        letter = letters[position]
        assert value.startswith(letter.payload), position
        if len(value) == 700_000:  # fits whole
            assert letter.payload == value and letter.original_size is None
        else:
            assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
    assert code == 0, linker.log_tail()
