"""What the pipeline published, checked against what was submitted and against the world's truth file.

- `Submissions`: a submissions.jsonl as (key, bytes) records plus the member keys each family's latest
  revision must end with;
- `MemberOutcome`: every record of `linkage.members.v1` grouped by key: the latest value per key,
  the keys with two different values (a delivery bug), tombstones;
- `stream_scores` / `batch_scores`: precision and recall at the auto-link level of the streamed
  records and of the batch engine (`linkage.batch.link_file`) on the same members, both scored by
  `linkage.evaluate.evaluate_links` against truth.parquet.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from linkage.evaluate import Evaluation, evaluate_links
from linkage.records import family_key_string
from services.kafka.io import read_topic
from services.kafka.record import KafkaRecord


@dataclass(frozen=True)
class Submissions:
    """The lines of a submissions file, keyed as the gateway keys them (the 22-digit family key)."""

    records: list[tuple[bytes, bytes]]
    members: list[int]  # member count of each record
    latest: dict[str, dict[str, Any]]  # family key -> its highest revision (parsed)

    @classmethod
    def read(cls, path: Path, limit: int | None = None) -> Submissions:
        """Read `path` (at most `limit` non-empty lines)."""
        lines: list[bytes] = []
        with open(path, "rb") as fh:
            for line in fh:
                if limit is not None and len(lines) >= limit:
                    break
                raw = line.rstrip(b"\r\n")
                if raw:
                    lines.append(raw)
        return cls.of(lines)

    @classmethod
    def of(cls, lines: list[bytes]) -> Submissions:
        """Parse submission lines (already valid JSON submissions)."""
        records: list[tuple[bytes, bytes]] = []
        members: list[int] = []
        latest: dict[str, dict[str, Any]] = {}
        for raw in lines:
            doc = json.loads(raw)
            key = family_key_string(doc["family_key"])
            records.append((key.encode(), raw))
            members.append(len(doc["members"]))
            if key not in latest or doc["revision"] >= latest[key]["revision"]:
                latest[key] = doc
        return cls(records, members, latest)

    def expected_member_keys(self) -> set[str]:
        """`<family key>-<serial:02d>` of every member of each family's latest revision."""
        return {f"{k}-{m['serial']:02d}" for k, doc in self.latest.items() for m in doc["members"]}

    def truth_record_ids(self) -> dict[str, str]:
        """Member key -> the truth file's record id (`<submission id>/<serial>` of the latest revision)."""
        return {
            f"{k}-{m['serial']:02d}": f"{doc['submission_id']}/{m['serial']}"
            for k, doc in self.latest.items()
            for m in doc["members"]
        }


@dataclass
class MemberOutcome:
    """All records of the members topic, per key, in offset order."""

    values: dict[str, list[bytes | None]] = field(default_factory=dict)

    @classmethod
    def read(cls, bootstrap: str, topic: str) -> MemberOutcome:
        """Read the whole topic."""
        return cls.of(read_topic(bootstrap, topic, timeout_s=60.0))

    @classmethod
    def of(cls, records: list[KafkaRecord]) -> MemberOutcome:
        """Group already-read records (one key lives on one partition, so offset order is key order)."""
        out = cls()
        for r in records:
            if r.key is not None:
                out.values.setdefault(r.key.decode(), []).append(r.value)
        return out

    def latest(self) -> dict[str, bytes]:
        """What a compacted topic holds: the latest value per key, tombstoned keys removed."""
        return {k: vs[-1] for k, vs in self.values.items() if vs[-1] is not None}

    def conflicting_keys(self) -> list[str]:
        """Keys with two different records for the SAME revision: a re-delivery must be byte-identical.

        (A newer revision of a family legitimately publishes new values under its members' keys.)
        """
        bad = []
        for key, vs in self.values.items():
            by_revision: dict[int, set[bytes]] = {}
            for v in vs:
                if v is not None:
                    by_revision.setdefault(json.loads(v)["revision"], set()).add(v)
            if any(len(distinct) > 1 for distinct in by_revision.values()):
                bad.append(key)
        return sorted(bad)

    def duplicates(self) -> int:
        """Records beyond the first per key (re-deliveries after crashes or rebalances)."""
        return sum(len(vs) - 1 for vs in self.values.values())

    def decisions(self) -> Counter[str]:
        """Latest decision counts (linked / pending_review / not_linked)."""
        return Counter(json.loads(v)["decision"] for v in self.latest().values())


def _truth(world: Path) -> pa.Table:
    return pq.read_table(world / "truth.parquet", columns=["record_id", "true_nik", "noise"])


def stream_scores(latest: dict[str, bytes], submissions: Submissions, world: Path) -> Evaluation:
    """Score the streamed member records like a links file (record id of the latest revision)."""
    record_ids = submissions.truth_record_ids()
    rows = []
    for key, value in latest.items():
        rec = json.loads(value)
        rows.append(
            {"record_id": record_ids.get(key, key), "master_record_id": rec.get("matched_nik"), "band": rec["band"]}
        )
    schema = pa.schema([("record_id", pa.string()), ("master_record_id", pa.string()), ("band", pa.string())])
    return evaluate_links(pa.Table.from_pylist(rows, schema=schema), _truth(world))


def batch_scores(world: Path, model: Path, submissions: Submissions) -> Evaluation:
    """The batch engine (Splink on DuckDB, same model artefact) on the latest revisions' members."""
    from contracts.submission import FAMILY_SUBMISSION_ADAPTER
    from linkage.batch import link_file
    from linkage.model.artefact import load_artefact
    from linkage.records import population_records
    from services.world import member_records, village_crosswalk

    master = population_records(pq.read_table(world / "population.parquet"))
    latest = [FAMILY_SUBMISSION_ADAPTER.validate_python(doc) for doc in submissions.latest.values()]
    records = member_records(latest, village_crosswalk(world / "crosswalk.parquet"))
    links, _ = link_file(master, records, artefact=load_artefact(model))
    return evaluate_links(links, _truth(world))


def group_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Records of `topic` beyond what consumer group `group` has committed (0: everything committed).

    None when the broker cannot tell yet (e.g. a freshly started broker has no group coordinator):
    callers poll, so a retriable error means "ask again", not a failed run.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="regsosek-lag")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, client_id="regsosek-lag")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        end = consumer.end_offsets(tps)
        committed = admin.list_consumer_group_offsets(group, partitions=tps)
        done = {tp: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
        return int(sum(max(0, off - done.get(tp, 0)) for tp, off in end.items()))
    except KafkaError as exc:
        if getattr(exc, "retriable", False):
            return None
        raise
    finally:
        consumer.close()
        admin.close()


def wait_for_members(
    bootstrap: str,
    topic: str,
    expected: set[str],
    *,
    timeout_s: float,
    failure: Callable[[], str | None] = lambda: None,
    poll_s: float = 1.0,
    consumed_by: tuple[str, str] | None = None,
) -> MemberOutcome:
    """Read `topic` until the latest records cover exactly `expected`; raise with `failure()`'s text.

    `failure` is asked between reads (e.g. "the linker exited"): a non-None answer aborts the wait.

    `consumed_by=(group, source topic)` also waits until that consumer group has committed the whole
    source topic. Use it whenever a later revision keeps the same member keys: the keys are then
    complete as soon as the FIRST revision is linked, and a read at that moment would still see the
    older records (the linker commits a batch's offsets only after its outputs are acknowledged, so
    once everything is committed the members topic holds every output).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        caught_up = consumed_by is None or group_lag(bootstrap, *consumed_by) == 0
        outcome = MemberOutcome.read(bootstrap, topic)
        if caught_up and set(outcome.latest()) == expected:
            return outcome
        problem = failure()
        if problem is not None:
            raise AssertionError(problem)
        if time.monotonic() > deadline:
            have = set(outcome.latest())
            lag = ""
            if consumed_by is not None:
                pending = group_lag(bootstrap, *consumed_by)
                lag = f", {'an unknown number of' if pending is None else pending} submissions not committed"
            raise AssertionError(
                f"{topic}: after {timeout_s:.0f} s {len(expected - have)} of {len(expected)} members missing, "
                f"{len(have - expected)} unexpected{lag}"
            )
        time.sleep(poll_s)
