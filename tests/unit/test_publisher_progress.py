"""The publisher's progress line (services/publisher/progress.py): what it says, when it is due, and that
the loop emits it with the real counts (fakes of the consumer and producer ports)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from contracts.topics import LINKED_FAMILIES, LINKED_MEMBERS
from integration.pseudonyms import KeyRing
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from services.publisher.loop import LoopConfig, PublisherLoop
from services.publisher.progress import ProgressReporter, ProgressSnapshot, progress_line, total_lag
from services.publisher.settings import PublisherSettings
from tests.support.publisher import EXAMPLE_SECRETS, example_registry
from tests.support.publisher_fakes import EXPECTED, NOW, FakeBroker, FakeProducer, seed_world


def test_the_line_has_totals_changes_rates_per_subscriber_counts_and_lag() -> None:
    before = ProgressSnapshot(
        at=100.0, records=10_000, unchanged=30, undecodable=1, sent={"kemenkes": 1000, "kemensos": 1595}, lag=900
    )
    now = ProgressSnapshot(
        at=130.0, records=12_000, unchanged=40, undecodable=1, sent={"kemenkes": 1200, "kemensos": 1905}, lag=150
    )
    assert progress_line(before, now) == (
        "publisher progress: 12000 records read (+2000, 66.7/s); 3105 notifications sent (+510, 17.0/s) "
        "to 2 subscribers: kemenkes 1200 (+200), kemensos 1905 (+310); 40 unchanged, 1 undecodable; lag 150"
    )


def test_a_new_subscriber_nothing_sent_and_an_unknown_lag() -> None:
    start = ProgressSnapshot(at=5.0)
    assert progress_line(start, ProgressSnapshot(at=5.0)) == (
        "publisher progress: 0 records read (+0, -/s); 0 notifications sent (+0, -/s); "
        "0 unchanged, 0 undecodable; lag ?"
    )
    later = ProgressSnapshot(at=15.0, records=4, sent={"kemendikbud": 2}, lag=0)
    assert progress_line(start, later).endswith(
        "2 notifications sent (+2, 0.2/s) to 1 subscribers: kemendikbud 2 (+2); 0 unchanged, 0 undecodable; lag 0"
    )


def test_due_every_interval_or_every_n_records_and_zero_turns_a_trigger_off() -> None:
    now, lines = [0.0], []
    reporter = ProgressReporter(interval_s=30.0, every_records=1000, clock=lambda: now[0], emit=lines.append)
    taken = []

    def snap(at: float) -> ProgressSnapshot:
        taken.append(at)
        return ProgressSnapshot(at=at, records=records)

    records = 999
    now[0] = 29.9
    assert reporter.report(records, snap) is None and taken == []  # not due: no snapshot (no lag request)
    records = 1000
    assert reporter.report(records, snap) is not None and len(lines) == 1  # by count
    now[0] = 59.8
    assert reporter.report(records, snap) is None
    now[0] = 59.9
    assert reporter.report(records, snap) is not None and len(lines) == 2  # by time (30 s after the last)
    assert reporter.report(records, snap, force=True) is not None and len(lines) == 3
    count_only = ProgressReporter(interval_s=0, every_records=10, clock=lambda: now[0], emit=lines.append)
    now[0] = 10_000.0
    assert count_only.report(9, snap) is None and count_only.report(10, snap) is not None
    assert not ProgressReporter(interval_s=0, every_records=0).enabled


class _LagConsumer:
    def __init__(self, ends: dict[TopicPartition, int], positions: dict[TopicPartition, int]) -> None:
        self.ends, self.positions, self.fail = ends, positions, False

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.fail:
            raise KafkaTimeoutError("no answer")
        return {tp: self.ends[tp] for tp in partitions}

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


def test_total_lag_over_the_assigned_partitions() -> None:
    m0, f0 = TopicPartition(LINKED_MEMBERS, 0), TopicPartition(LINKED_FAMILIES, 0)
    consumer = _LagConsumer({m0: 120, f0: 7}, {m0: 100, f0: 7})
    assert total_lag(consumer) == 20
    consumer.fail = True
    assert total_lag(consumer) is None  # telemetry: a broker error is "unknown", never a crash
    assert total_lag(_LagConsumer({}, {})) is None  # nothing assigned yet
    assert total_lag(object()) is None  # a consumer without end offsets


def test_the_loop_emits_the_counts_of_what_it_sent(tmp_path: Path) -> None:
    broker = FakeBroker()
    seed_world(broker)  # 3 input records -> EXPECTED notifications
    lines: list[str] = []
    log = DisclosureLog(tmp_path / "d.sqlite")
    publisher = Publisher(example_registry(), KeyRing(EXAMPLE_SECRETS), log, clock=lambda: NOW)
    reporter = ProgressReporter(interval_s=0, every_records=3, emit=lines.append)
    loop = PublisherLoop(
        publisher, LoopConfig("fake:0"), consumer=broker.consumer(), producer=FakeProducer(broker), progress=reporter
    )
    assert loop.run_once() == 3
    assert len(lines) == 1
    # Exactly counts, rates and subscriber ids: no NIK, key or any other value of the records.
    assert re.fullmatch(
        rf"publisher progress: 3 records read \(\+3, (?:[0-9.]+|-)/s\); {EXPECTED} notifications sent "
        rf"\(\+{EXPECTED}, (?:[0-9.]+|-)/s\) to 3 subscribers: kemendikbud 1 \(\+1\), kemenkes 1 \(\+1\), "
        r"kemensos 3 \(\+3\); 0 unchanged, 0 undecodable; lag \?",
        lines[0],
    ), lines[0]
    assert loop.run_once() == 0 and len(lines) == 1  # nothing new read: not due
    loop.stop()
    loop.run()  # a clean stop logs the final totals
    assert len(lines) == 2 and lines[1].startswith("publisher progress: 3 records read (+0, ")
    log.close()


def test_the_publisher_settings_carry_the_progress_triggers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGSOSEK_PUBLISHER_PROGRESS_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("REGSOSEK_PUBLISHER_PROGRESS_EVERY_RECORDS", "0")
    settings = PublisherSettings()
    assert (settings.progress_interval_seconds, settings.progress_every_records) == (5.0, 0)
    assert (LoopConfig("x").progress_interval_s, LoopConfig("x").progress_every_records) == (30.0, 10_000)
