"""The gateway and the linker on the REAL secured broker (SASL/SCRAM-SHA-512 + ACLs), each with its own
principal and the SASL settings of its own settings object (`..._SASL_USERNAME`, `..._SASL_PASSWORD_FILE`).

The secured broker and `regsosek acl sync` are the fixtures of tests/integration/conftest.py (a broker of this module);
passwords are generated at run time and handed over in files, as in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from contracts.topics import LINK_STATE_CHANGELOG, LINKED_FAMILIES, LINKED_MEMBERS, SUBMISSIONS, SUBMISSIONS_DLQ
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.kafka.io import read_topic
from tests.support.gateway import family_key_of, sample_body, sample_submission
from tests.support.polling import poll_until
from tests.support.secured_broker import SecuredBroker
from tools.pipeline.linker_process import LinkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TOKEN = "acl-services-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _gateway(broker: SecuredBroker, user: str, password_file: Path) -> TestClient:
    settings = GatewaySettings(
        bootstrap=broker.sasl,
        topic=SUBMISSIONS,
        tokens={TOKEN: "team-3603"},
        produce_timeout_s=8.0,
        sasl_username=user,
        sasl_password_file=password_file,
    )
    return TestClient(build_app(settings))


def test_gateway_stores_submissions_with_its_own_principal_only(synced: SecuredBroker, tmp_path: Path) -> None:
    own = synced.credentials_dir / "regsosek-gateway.password"
    with _gateway(synced, "regsosek-gateway", own) as client:
        assert client.get("/readyz").status_code == 200
        answer = client.post("/v1/submissions", content=sample_body(901), headers=AUTH)
        assert answer.status_code == 202, answer.text
    key = family_key_of(sample_submission(901)).encode()
    stored = [r for r in read_topic(synced.config.bootstrap, SUBMISSIONS) if r.key == key]
    assert [json.loads(r.value or b"")["submission_id"] for r in stored] == ["S-3603-0000901-r1"]
    # Another service's principal may not write submissions; a wrong password does not log in.
    linker_pw = synced.credentials_dir / "regsosek-linker.password"
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password-0123\n")
    for user, password in (("regsosek-linker", linker_pw), ("regsosek-gateway", wrong)):
        with _gateway(synced, user, password) as client:
            refused = client.post("/v1/submissions", content=sample_body(902), headers=AUTH)
            assert refused.status_code == 503, (user, refused.text)
    assert not [
        r
        for r in read_topic(synced.config.bootstrap, SUBMISSIONS)
        if r.key == family_key_of(sample_submission(902)).encode()
    ]


def _records(broker: SecuredBroker, topic: str, prefix: bytes) -> list[bytes]:
    # Read through the operator listener (not one of the principals under test).
    return [r.key or b"" for r in read_topic(broker.config.bootstrap, topic) if (r.key or b"").startswith(prefix)]


def test_linker_links_with_its_own_principal(synced: SecuredBroker, tmp_path: Path) -> None:
    doc = sample_submission(903)
    family_key = family_key_of(doc).encode()
    producer = KafkaProducer(bootstrap_servers=synced.sasl, acks="all", **synced.security("regsosek-gateway"))
    try:
        producer.send(SUBMISSIONS, key=family_key, value=sample_body(903)).get(timeout=30)
    finally:
        producer.close(timeout=5)
    head = doc["members"][0]
    master = tmp_path / "master.json"
    master.write_text(json.dumps([{"nik": head["nik"], "full_name": head["name"], "kk_number": doc["kk_number"]}]))
    group = "regsosek-linker-acl"  # inside the linker's prefixed group grant
    env = {
        "REGSOSEK_LINKER_SASL_USERNAME": "regsosek-linker",
        "REGSOSEK_LINKER_SASL_PASSWORD_FILE": str(synced.credentials_dir / "regsosek-linker.password"),
        # its changelog writes are transactions: they need the TransactionalId grants of `acl sync`
        "REGSOSEK_LINKER_CHANGELOG_TOPIC": LINK_STATE_CHANGELOG,
    }
    linker = LinkerProcess(
        bootstrap=synced.sasl,
        group=group,
        state_dir=tmp_path / "state",
        topics={},
        fake_master=master,
        extra_env=env,
        log_path=tmp_path / "linker.log",
    )

    def linked() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]] | None:
        members = _records(synced, LINKED_MEMBERS, family_key + b"-")
        families = _records(synced, LINKED_FAMILIES, family_key)
        dead = _records(synced, SUBMISSIONS_DLQ, b"")
        state = _records(synced, LINK_STATE_CHANGELOG, family_key)
        linker.check_running()
        done = len(members) == len(doc["members"]) and families and dead and state
        return (members, families, dead, state) if done else None

    try:
        members, _, _, state = poll_until(linked, 120, linker.log_tail, interval_s=1.0)
    finally:
        linker.stop()
    assert sorted(members) == [f"{family_key.decode()}-{m['serial']:02d}".encode() for m in doc["members"]]
    assert len(state) == 1  # the family's state, committed in the changelog partition's transaction
    # Its group committed the submissions it read (READ on its own group), as its own principal.
    admin = KafkaAdminClient(bootstrap_servers=synced.config.bootstrap)
    try:
        committed = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    assert {tp.topic for tp in committed} == {SUBMISSIONS} and sum(o.offset for o in committed.values()) >= 2
    assert synced.passwords["regsosek-linker"] not in linker.log_text()
