"""Shared by the fault tests of the linker service: private topics, a linker subprocess, waiting."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, REVIEW, SUBMISSIONS, SUBMISSIONS_DLQ, topic_spec
from services.kafka_io import ConsumedRecord, read_topic
from services.topics import provision
from tests.support.linker import FakeMasterPerson, member_payload, nik_for, submission_payload

REPO = Path(__file__).resolve().parents[2]
ENV_NAMES = {SUBMISSIONS: "SUBMISSIONS_TOPIC", SUBMISSIONS_DLQ: "DLQ_TOPIC", LINKED_MEMBERS: "MEMBERS_TOPIC",
             LINKED_FAMILIES: "FAMILIES_TOPIC", REVIEW: "REVIEW_TOPIC"}  # fmt: skip
KK = "3603121705150003"


def private_topics(bootstrap: str) -> dict[str, str]:
    """Copies of the linker's catalogue topics under unique names: catalogue name -> private name."""
    tag = uuid.uuid4().hex[:8]
    names = {src: f"t{tag}.{src}" for src in ENV_NAMES}
    assert not provision(bootstrap, [dataclasses.replace(topic_spec(s), name=d) for s, d in names.items()]).differences
    return names


def family(n: int) -> tuple[bytes, bytes]:
    """(key, value) of a valid one-member family `n` whose member the fake engine links."""
    key = f"360301000100010{n:04d}001"  # 22 digits: building serial n
    doc = submission_payload([member_payload(1, f"Warga Nomor {n}", nik_for(n))], family_key=key, kk_number=KK)
    return key.encode(), json.dumps(doc).encode()


def master_file(path: Path, families: range) -> Path:
    """The fake engine's master: the member of every family in `families`."""
    people = [FakeMasterPerson(nik_for(n), f"Warga Nomor {n}", KK) for n in families]
    path.write_text(json.dumps([dataclasses.asdict(p) for p in people]))
    return path


def fault_run(bootstrap: str, tmp_path: Path, prefix: str) -> tuple[dict[str, str], Path, str]:
    """A fault test's set-up: private topics, the master of families 1 and 2, a fresh group `prefix-...`."""
    names = private_topics(bootstrap)
    master = master_file(tmp_path / "master.json", range(1, 3))
    return names, master, f"{prefix}-{uuid.uuid4().hex[:6]}"


def members(n: int) -> Callable[[list[ConsumedRecord]], bool]:
    """A `wait_for` condition: at least `n` distinct member keys on the topic."""
    return lambda records: len({r.key for r in records}) >= n


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for future in [producer.send(topic, key=k, value=v) for k, v in records]:
            future.get(timeout=30)
    finally:
        producer.close()


class LinkerProcess:
    """The linker service (`module`: the fake engine's entry or the test-only fault harness) in a subprocess."""

    def __init__(self, bootstrap: str, names: dict[str, str], state_dir: Path, master: Path, group: str,
                 *, module: str = "tests.support.fake_linker", env: dict[str, str] | None = None) -> None:  # fmt: skip
        full = {k: v for k, v in os.environ.items() if not k.startswith("REGSOSEK_LINKER_")}
        full.update({f"REGSOSEK_LINKER_{ENV_NAMES[src]}": dst for src, dst in names.items()})
        full.update({"REGSOSEK_LINKER_BOOTSTRAP": bootstrap, "REGSOSEK_LINKER_APP_ID": group,
                     "REGSOSEK_LINKER_STATE_DIR": str(state_dir),
                     "REGSOSEK_LINKER_FAKE_MASTER_PATH": str(master)})  # fmt: skip
        full.update(env or {})
        self.log = master.parent / f"{group}-{uuid.uuid4().hex[:4]}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", module], cwd=REPO, env=full, stdout=self._out,
                                     stderr=subprocess.STDOUT)  # fmt: skip

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit status, or None if still running after `timeout_s`."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 60 s; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(60) is None:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def text(self) -> str:
        """The whole log of the process (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        return self.text()[-6000:]


def wait_for(bootstrap: str, topic: str, done: Callable[[list[ConsumedRecord]], bool], linker: LinkerProcess,
             timeout_s: float = 90.0) -> list[ConsumedRecord]:  # fmt: skip
    """Read `topic` until `done(records)`; fail with the linker's log if it dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_topic(bootstrap, topic)
        if done(records):
            return records
        if linker.proc.poll() is not None:
            pytest.fail(f"the linker exited with {linker.proc.returncode}:\n{linker.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{topic}: {len(records)} records after {timeout_s:.0f} s\n{linker.tail()}")
        time.sleep(0.3)


def wait_until(condition: Callable[[], bool], linker: LinkerProcess, what: str, timeout_s: float = 90.0) -> None:
    """Poll `condition` until true; fail with the linker's log if time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout_s:.0f} s\n{linker.tail()}")
        time.sleep(0.2)


def committed(bootstrap: str, group: str, topic: str) -> int:
    """How many records of `topic` the consumer group has committed (sum of its committed offsets)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def link_first_family(bootstrap: str, names: dict[str, str], group: str, linker: LinkerProcess) -> None:
    """Wait until `linker` has published family 1's member and committed its submission."""
    wait_for(bootstrap, names[LINKED_MEMBERS], members(1), linker)
    # Offsets are committed after the link-store write: family 1 is then on the volume.
    wait_until(lambda: committed(bootstrap, group, names[SUBMISSIONS]) == 1, linker, "commit of family 1")


def duckdb_opens(path: Path) -> subprocess.CompletedProcess[str]:
    """Open (and read) a DuckDB file in a NEW process: fails while another process holds its lock."""
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
            "print(con.execute('SELECT count(*) FROM family_revisions').fetchone()[0])")  # fmt: skip
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
