"""The linker's faust consumer commits only past records the linker finished.

Each case first shows what faust's own account (`faust.transport.consumer.Consumer._new_offset`) would
commit in the same state: past a record no batch processed, which the next owner then never reads.
No broker: the consumer is built, not started, and fed the way faust's rebalance and acks feed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message

from services.linker.strict_commit import LinkerApp, StrictCommitConsumer

TOPIC = "regsosek.submissions.v1"
P2 = TP(TOPIC, 2)


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[StrictCommitConsumer]:
    app = LinkerApp("strict-commit-test", broker="kafka://127.0.0.1:9", web_enabled=False, autodiscover=False)
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: topic == TOPIC)  # the agent's topic
    yield app.strict_consumer


def message(offset: int, tp: TP = P2) -> Message:
    return Message(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp)


def faust_would_commit(consumer: StrictCommitConsumer, tp: TP) -> int | None:
    """faust's own answer for the consumer's current acks (its account is consumed, as faust does)."""
    acked, index = list(consumer._acked[tp]), set(consumer._acked_index[tp])
    try:
        return faust_consumer.Consumer._new_offset(consumer, tp)
    finally:
        consumer._acked[tp][:] = acked
        consumer._acked_index[tp] = index


def test_a_record_faust_skipped_and_acked_is_not_committed_until_a_batch_processed_it(
    consumer: StrictCommitConsumer,
) -> None:
    consumer._committed_offset[P2] = 31  # the seek after the assignment
    consumer.ledger.start({P2: 31})
    consumer.ack(message(31))  # a stream skipped it (fetched in the old generation) and acked it
    for offset in (32, 33, 34):
        consumer.processed(message(offset))
        consumer.ack(message(offset))
    assert faust_would_commit(consumer, P2) == 35
    assert consumer._new_offset(P2) is None
    assert consumer.ledger.held() == {P2: 31}
    consumer.processed(message(31))  # delivered again after the next seek, and linked
    consumer.ack(message(31))
    assert consumer._new_offset(P2) == 35


def test_a_revocation_that_forgot_the_position_commits_nothing_past_an_unprocessed_record(
    consumer: StrictCommitConsumer,
) -> None:
    consumer._committed_offset[P2] = 31
    consumer.ledger.start({P2: 31})
    consumer._committed_offset.pop(P2)  # faust's revocation drops it before the last commits
    for offset in (32, 33):  # 31 is in no batch
        consumer.processed(message(offset))
        consumer.ack(message(offset))
    assert faust_would_commit(consumer, P2) == 34
    assert consumer._new_offset(P2) is None


def test_one_missing_record_right_at_the_committed_offset_holds_the_commit(consumer: StrictCommitConsumer) -> None:
    consumer._committed_offset[P2] = 31
    consumer.ledger.start({P2: 31})
    for offset in (32, 33):
        consumer.processed(message(offset))
        consumer.ack(message(offset))
    assert faust_would_commit(consumer, P2) == 34  # faust checks `first acked - committed > 1`
    assert consumer._new_offset(P2) is None


def test_processed_records_commit_in_order_and_faust_bookkeeping_does_not_grow(consumer: StrictCommitConsumer) -> None:
    consumer.ledger.start({P2: 0})
    for offset in range(5):
        consumer.processed(message(offset))
        consumer.ack(message(offset))
    assert consumer._new_offset(P2) == 5
    assert consumer._acked[P2] == [] and consumer._acked_index[P2] == set()
    assert consumer._new_offset(P2) is None


def test_the_seek_places_each_partition_at_its_commit_or_the_log_start(
    consumer: StrictCommitConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    p0, p1, p3 = TP(TOPIC, 0), TP(TOPIC, 1), TP(TOPIC, 3)
    committed: Mapping[TP, int | None] = {p0: None, p1: 5, P2: 3, p3: 0}
    earliest = {p0: 2, p1: 0, P2: 10, p3: 0}
    seeks = fake_broker(monkeypatch, committed, earliest)
    consumer.processed(message(40, TP(TOPIC, 7)))  # a partition no longer assigned
    assert asyncio.run(consumer.seek_to_committed()) == committed
    # no commit: the log start; a commit older than the log start (retention): the log start
    assert {tp: consumer.ledger.position(tp) for tp in (p0, p1, P2, p3)} == {p0: 2, p1: 5, P2: 10, p3: 0}
    assert consumer.ledger.position(TP(TOPIC, 7)) is None
    # faust (aiokafka) sought p1 (committed 5) and P2 (to 3); every other start is sought here
    assert seeks == [(p0, 2), (P2, 10), (p3, 0)]


def test_a_partition_kept_through_a_rebalance_whose_commit_was_lost_goes_on_from_its_own_position(
    consumer: StrictCommitConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    p3 = TP(TOPIC, 3)
    consumer.ledger.start({p3: 0})
    for offset in range(44):  # linked and stored; the revocation came before their commit
        consumer.processed(message(offset, p3))
    seeks = fake_broker(monkeypatch, {p3: None}, {p3: 0})
    asyncio.run(consumer.seek_to_committed())
    # faust leaves a never-committed partition where its fetcher was; the ledger holds no commit at 0
    assert seeks == [(p3, 44)]
    assert consumer._new_offset(p3) == 44
    assert consumer.ledger.held() == {}


def test_records_skipped_before_the_agent_are_read_again_once(
    consumer: StrictCommitConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    p3 = TP(TOPIC, 3)
    seeks = fake_broker(monkeypatch, {p3: None}, {p3: 0})
    reread: list[int] = []
    consumer.on_reread = reread.append
    asyncio.run(consumer.seek_to_committed())
    assert seeks == [(p3, 0)]
    asyncio.run(consumer.delivered([message(0, p3), message(1, p3)]))
    asyncio.run(consumer.delivered([message(380, p3), message(381, p3)]))  # 2..379 never reached the agent
    assert seeks == [(p3, 0), (p3, 2)]
    asyncio.run(consumer.delivered([message(382, p3)]))  # fetched before the seek back: no second seek
    asyncio.run(consumer.delivered([message(2, p3), message(3, p3)]))
    assert seeks == [(p3, 0), (p3, 2)]
    assert consumer._read_offset[p3] == 2  # faust lets the re-read records through
    assert reread == [378]


def fake_broker(
    monkeypatch: pytest.MonkeyPatch, committed: Mapping[TP, int | None], earliest: Mapping[TP, int]
) -> list[tuple[TP, int]]:
    """faust's aiokafka calls the strict consumer makes, answered from these offsets; returns its seeks."""
    seeks: list[tuple[TP, int]] = []

    async def seek_to_committed(self: object) -> Mapping[TP, int | None]:
        return committed

    async def earliest_offsets(self: object, *tps: TP) -> Mapping[TP, int]:
        return {tp: earliest[tp] for tp in tps}

    async def seek(self: object, tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    monkeypatch.setattr(aiokafka_driver.Consumer, "seek_to_committed", seek_to_committed)
    monkeypatch.setattr(aiokafka_driver.Consumer, "earliest_offsets", earliest_offsets)
    monkeypatch.setattr(aiokafka_driver.Consumer, "_seek", seek)
    return seeks
