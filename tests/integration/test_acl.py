"""Access control on a REAL secured broker: SASL/SCRAM-SHA-512 + StandardAuthorizer + `regsosek acl sync`.

A separate broker (module fixture, free ports, temporary folder) runs in the optional security mode of
tools/broker.py; the session broker of the other tests is not touched. Every password is generated
here at run time (never stored in the repository) and handed to `regsosek acl sync` through files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import typer
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from typer.testing import CliRunner

from contracts.linkage_outputs import to_canonical_json
from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, SUBMISSIONS, UPDATES
from integration.pseudonyms import KeyRing
from services.access.acl import GATEWAY, LINKER, PUBLISHER, PUBLISHER_GROUP
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from services.publisher.loop import LoopConfig, PublisherLoop
from services.publisher.registry_file import save_registry
from tests.support.publisher import EXAMPLE_SECRETS, example_registry, linked_member
from tests.support.secured_broker import DENIED, SecuredBroker, acl_sync, producer_as, read_as, write_as
from tools import broker as broker_service

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_broker_start_secured_says_how_to_connect(secured: SecuredBroker, dev_cli_app: typer.Typer) -> None:
    password_file = broker_service.admin_password_file(secured.config)
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = secured.passwords["admin"]
    assert len(password) >= 24 and password not in secured.start_output
    assert f"SCRAM-SHA-512 at {secured.sasl} " in secured.start_output
    assert f"admin credentials: user admin, password in {password_file}" in secured.start_output
    # The admin logs in through the SASL listener with that password; a wrong one is refused.
    admin = KafkaAdminClient(bootstrap_servers=secured.sasl, request_timeout_ms=15000, **secured.security("admin"))
    try:
        assert SUBMISSIONS in admin.list_topics()
    finally:
        admin.close()
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=secured.sasl,
            request_timeout_ms=5000,
            **secured.security("admin", "not-the-password-0123"),
        )
    status = CliRunner().invoke(dev_cli_app, ["broker", "status", "--run-dir", str(secured.config.run_dir)])
    assert status.exit_code == 0 and f"SASL/SCRAM at {secured.sasl}" in status.output
    # Started again: the same broker and the same password file (the admin password does not change).
    config = secured.config
    again = CliRunner().invoke(
        dev_cli_app,
        [
            "broker",
            "start",
            "--secured",
            "--run-dir",
            str(config.run_dir),
            "--port",
            str(config.port),
            "--sasl-port",
            str(config.sasl_port),
        ],
    )
    assert again.exit_code == 0 and "already running" in again.output, again.output
    assert password_file.read_text().strip() == password


def test_acl_sync_is_idempotent_and_plans_least_privilege(synced: SecuredBroker, cli_app: typer.Typer) -> None:
    out = acl_sync(cli_app, synced)
    assert out.strip().splitlines()[-1].startswith("0 created, 0 deleted, ")
    plan = CliRunner().invoke(cli_app, ["acl", "plan", "--registry", str(synced.registry_path)])
    kemenkes = [line for line in plan.output.splitlines() if line.startswith("User:kemenkes ")]
    assert kemenkes == [
        "User:kemenkes read group:subscriber.kemenkes.*",
        "User:kemenkes describe topic:subscriber.kemenkes.notifications.v1",
        "User:kemenkes read topic:subscriber.kemenkes.notifications.v1",
    ]
    assert not any(" write " in line for line in plan.output.splitlines() if line.startswith("User:kemen"))


def test_subscriber_reads_its_own_topic_and_nothing_else(synced: SecuredBroker) -> None:
    assert read_as(synced, "kemensos", "subscriber.kemensos.notifications.v1") == "ok"
    assert read_as(synced, "kemensos", "subscriber.kemensos.notifications.v1", group="subscriber.kemensos.app") == "ok"
    assert read_as(synced, "kemensos", "subscriber.kemenkes.notifications.v1") == DENIED
    assert read_as(synced, "kemensos", SUBMISSIONS) == DENIED
    assert read_as(synced, "kemensos", LINKED_MEMBERS) == DENIED
    # Its own topic, but under someone else's consumer group.
    assert read_as(synced, "kemensos", "subscriber.kemensos.notifications.v1", group="subscriber.kemenkes.x") == DENIED


def test_subscriber_cannot_write(synced: SecuredBroker) -> None:
    assert write_as(synced, "kemensos", "subscriber.kemensos.notifications.v1") == DENIED
    assert write_as(synced, "kemenkes", SUBMISSIONS) == DENIED


def test_services_can_do_only_their_own_work(synced: SecuredBroker) -> None:
    assert write_as(synced, GATEWAY, SUBMISSIONS) == "ok"
    assert read_as(synced, GATEWAY, SUBMISSIONS) == DENIED
    assert write_as(synced, GATEWAY, LINKED_MEMBERS) == DENIED

    assert read_as(synced, LINKER, SUBMISSIONS, group="regsosek-linker") == "ok"
    assert write_as(synced, LINKER, LINKED_MEMBERS) == "ok"
    assert write_as(synced, LINKER, SUBMISSIONS) == DENIED
    assert write_as(synced, LINKER, "subscriber.kemensos.notifications.v1") == DENIED

    assert read_as(synced, PUBLISHER, LINKED_MEMBERS, group=PUBLISHER_GROUP) == "ok"
    assert write_as(synced, PUBLISHER, "subscriber.kemensos.notifications.v1") == "ok"
    assert read_as(synced, PUBLISHER, SUBMISSIONS) == DENIED
    assert write_as(synced, PUBLISHER, LINKED_MEMBERS) == DENIED
    assert read_as(synced, PUBLISHER, "subscriber.kemensos.notifications.v1") == DENIED


def test_wrong_password_and_unknown_user_are_rejected(synced: SecuredBroker) -> None:
    server_log = synced.config.logs_dir / "server.log"
    before = server_log.read_text(errors="replace").count("invalid credentials with SASL mechanism SCRAM-SHA-512")
    for user, password in (("kemensos", "not-the-password"), ("nobody", "whatever-password")):
        with pytest.raises(KafkaError):
            KafkaAdminClient(bootstrap_servers=synced.sasl, request_timeout_ms=5000, **synced.security(user, password))
    after = server_log.read_text(errors="replace").count("invalid credentials with SASL mechanism SCRAM-SHA-512")
    assert after >= before + 2
    # The right password works (the failures above are about the credentials, not the listener).
    admin = KafkaAdminClient(bootstrap_servers=synced.sasl, request_timeout_ms=5000, **synced.security("kemensos"))
    admin.close()


def test_publisher_runs_with_its_own_principal(synced: SecuredBroker, tmp_path: Path) -> None:
    member = linked_member(1, nik="3603121505800002", bpjs_id="0001234567890")
    with producer_as(synced, LINKER) as producer:
        producer.send(LINKED_MEMBERS, key=member.member_key.encode(), value=to_canonical_json(member)).get(timeout=10)
    registry = example_registry()
    publisher = Publisher(registry, KeyRing(EXAMPLE_SECRETS), DisclosureLog(tmp_path / "d.sqlite"))
    loop = PublisherLoop(
        publisher, LoopConfig(synced.sasl, group_id=PUBLISHER_GROUP, poll_timeout_ms=200), **synced.security(PUBLISHER)
    )
    try:
        loop.run_until_idle(idle_s=2.0, max_s=60.0)
    finally:
        loop.close()
    # The two seeded "{}" records are counted as undecodable; the member went to kemensos and kemenkes.
    assert publisher.stats.sent == 2 and publisher.log.count() == 2
    consumer = KafkaConsumer(
        bootstrap_servers=synced.sasl,
        group_id="subscriber.kemenkes.reader",
        auto_offset_reset="earliest",
        consumer_timeout_ms=8000,
        **synced.security("kemenkes"),
    )
    consumer.subscribe(["subscriber.kemenkes.notifications.v1"])
    values = [r.value for r in consumer if r.value != b"{}"]
    consumer.close()
    assert len(values) == 1 and b'"purpose_code":"PBI-JK-VERIFICATION"' in values[0]
    assert {LINKED_FAMILIES, UPDATES} <= set(publisher.topics.all())


def test_removed_subscriber_loses_grants_and_login(synced: SecuredBroker, cli_app: typer.Typer) -> None:
    from services.publisher.registry_file import load_registry

    registry = load_registry(synced.registry_path)
    save_registry(synced.registry_path, registry.without("kemendikbud"))
    try:
        out = acl_sync(cli_app, synced)
        assert "acl deleted     User:kemendikbud read topic:subscriber.kemendikbud.notifications.v1" in out
        assert "user deleted    kemendikbud" in out
        # The deletion reaches the broker's credential cache through the metadata log: allow a moment.
        for _ in range(20):
            try:
                KafkaAdminClient(
                    bootstrap_servers=synced.sasl, request_timeout_ms=5000, **synced.security("kemendikbud")
                ).close()
            except KafkaError:
                break
            time.sleep(0.5)
        else:
            pytest.fail("kemendikbud could still log in 10 s after its credential was deleted")
    finally:
        save_registry(synced.registry_path, registry)
        acl_sync(cli_app, synced, "--credentials-dir", str(synced.credentials_dir))


def test_serve_publisher_cli_over_sasl(synced: SecuredBroker, tmp_path: Path) -> None:
    """`regsosek serve publisher` as a process: credentials and pseudonym keys from env/files only."""
    import os
    import signal
    import subprocess
    import sys

    keys = tmp_path / "keys"
    keys.mkdir()
    for sid, secret in EXAMPLE_SECRETS.items():
        (keys / f"{sid}.key").write_bytes(secret)
    password_file = tmp_path / "publisher.password"
    password_file.write_text(synced.passwords[PUBLISHER])
    member = linked_member(4, nik=None)
    with producer_as(synced, LINKER) as producer:
        producer.send(LINKED_MEMBERS, key=member.member_key.encode(), value=to_canonical_json(member)).get(timeout=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGSOSEK_PUBLISHER_")}
    env.update(
        {"REGSOSEK_PUBLISHER_SASL_USERNAME": PUBLISHER, "REGSOSEK_PUBLISHER_SASL_PASSWORD_FILE": str(password_file)}
    )
    db = tmp_path / "disclosures.sqlite"
    out = tmp_path / "publisher.log"
    with open(out, "wb") as fh:
        proc = subprocess.Popen(  # noqa: S603 - fixed command line
            [
                sys.executable,
                "-m",
                "services.cli",
                "serve",
                "publisher",
                "--bootstrap",
                synced.sasl,
                "--registry",
                str(synced.registry_path),
                "--keys-dir",
                str(keys),
                "--disclosure-db",
                str(db),
            ],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not (db.is_file() and DisclosureLog(db).query(subscriber_id="kemensos")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve publisher did not publish:\n{out.read_text()[-3000:]}")
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert proc.returncode == 0, out.read_text()[-2000:]
    events = {(d.subscriber_id, d.event_type) for d in DisclosureLog(db).query()}
    # The unlinked member 4 is news to kemensos only (kemenkes wants BPJS members, kemendikbud families).
    assert ("kemensos", "person_new") in events
    assert not any(sid == "kemenkes" and e == "person_new" for sid, e in events)


def test_acl_sync_over_the_operator_listener_bootstraps_users(
    synced: SecuredBroker, cli_app: typer.Typer, tmp_path: Path
) -> None:
    # A fresh deployment has no SCRAM user yet: the one-shot sync runs on the internal PLAINTEXT listener.
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "admin.password").write_text(synced.passwords["admin"])
    done = CliRunner().invoke(
        cli_app,
        [
            "acl",
            "sync",
            "--plaintext",
            "--bootstrap",
            synced.config.bootstrap,
            "--credentials-dir",
            str(creds),
            "--registry",
            str(synced.registry_path),
        ],
        env={"REGSOSEK_ACL_ADMIN_PASSWORD": ""},
    )
    assert done.exit_code == 0, done.output
    assert "user set        admin" in done.output
    assert done.output.strip().splitlines()[-1].startswith("0 created, 0 deleted")
    KafkaAdminClient(bootstrap_servers=synced.sasl, request_timeout_ms=5000, **synced.security("admin")).close()
