"""Shared by the fault tests of the linker service: private topics, the linker subprocess, commits."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS, REVIEW, SUBMISSIONS, SUBMISSIONS_DLQ, topic_spec
from services.kafka.record import KafkaRecord
from services.kafka.topics import provision
from tests.support.linker import FakeMasterPerson, member_payload, nik_for, submission_payload
from tests.support.linker_service import committed
from tests.support.polling import poll_until, records_until
from tools.pipeline.linker_process import LinkerProcess

REPO = Path(__file__).resolve().parents[2]
PRIVATE = (SUBMISSIONS, SUBMISSIONS_DLQ, LINKED_MEMBERS, LINKED_FAMILIES, REVIEW)  # the topics a run renames
KK = "3603121705150003"


def private_topics(bootstrap: str) -> dict[str, str]:
    """Copies of the linker's catalogue topics under unique names: catalogue name -> private name."""
    tag = uuid.uuid4().hex[:8]
    names = {src: f"t{tag}.{src}" for src in PRIVATE}
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


def members(n: int) -> Callable[[list[KafkaRecord]], bool]:
    """A `records_until` condition: at least `n` distinct member keys on the topic."""
    return lambda records: len({r.key for r in records}) >= n


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for future in [producer.send(topic, key=k, value=v) for k, v in records]:
            future.get(timeout=30)
    finally:
        producer.close()


def start_linker(
    bootstrap: str,
    names: dict[str, str],
    state_dir: Path,
    master: Path,
    group: str,
    *,
    module: str | None = None,
    env: dict[str, str] | None = None,
) -> LinkerProcess:
    """The linker (the fake engine's entry, or `module`: a test-only fault harness) on the private topics,
    logging to a file of its own."""
    log = master.parent / f"{group}-{uuid.uuid4().hex[:4]}.log"
    return LinkerProcess(
        bootstrap=bootstrap,
        group=group,
        state_dir=state_dir,
        topics=names,
        fake_master=master,
        module=module,
        extra_env=env,
        log_path=log,
    )


def link_first_family(bootstrap: str, names: dict[str, str], group: str, linker: LinkerProcess) -> None:
    """Wait until `linker` has published family 1's member and committed its submission."""
    records_until(bootstrap, names[LINKED_MEMBERS], members(1), linker)
    # Offsets are committed after the link-store write: family 1 is then on the volume.
    poll_until(lambda: committed(bootstrap, group, names[SUBMISSIONS]) == 1, 90, linker.log_tail)


def duckdb_opens(path: Path) -> subprocess.CompletedProcess[str]:
    """Open (and read) a DuckDB file in a NEW process: fails while another process holds its lock."""
    code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
        "print(con.execute('SELECT count(*) FROM family_revisions').fetchone()[0])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
