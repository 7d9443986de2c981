"""The changelog fence (issue 12) on the real broker: a stale old owner's late write never wins.

Writer A owns changelog partition 0 and commits a family's state; writer B (another instance, the same
app id) takes partition 0 over: it starts the partition's transactional producer (a new epoch), restores,
and writes its own state of the family. A's next write (a zombie that overran the rebalance timeout)
comes back fenced, and a read_committed restore afterwards (a third owner) finds B's state, not A's.
Without the fence A's late record would be the partition's latest for the family.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from contracts.topics import LINK_STATE_CHANGELOG, topic_spec
from services.kafka.topics import provision
from services.linker.changelog import ChangelogWrite
from services.linker.changelog_kafka import KafkaChangelogReader, KafkaChangelogWriter
from tests.support.broker import RunningBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

FAMILY = b"3201010001000100010001"


def _topic(bootstrap: str) -> str:
    name = f"fence-{uuid.uuid4().hex[:8]}.changelog"
    report = provision(bootstrap, [dataclasses.replace(topic_spec(LINK_STATE_CHANGELOG), name=name, partitions=2)])
    assert not report.differences
    return name


def test_a_takeover_fences_the_old_owner_and_a_restore_reads_the_new_owners_state(
    kafka_broker: RunningBroker,
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = _topic(bootstrap)
    app_id = f"fence-{uuid.uuid4().hex[:6]}"
    reader = KafkaChangelogReader(bootstrap, topic, timeout_s=30)

    async def scenario() -> tuple[ChangelogWrite, ChangelogWrite, ChangelogWrite, ChangelogWrite, list[bytes]]:
        a = KafkaChangelogWriter(bootstrap, topic, app_id)
        b = KafkaChangelogWriter(bootstrap, topic, app_id)
        try:
            await a.acquire([0, 1])
            first = await a.write({0: [(FAMILY, b"A-1")], 1: [(b"other", b"A-other")]})
            await b.acquire([0])  # the takeover: a new epoch for partition 0, before B restores it
            restored, _ = await asyncio.to_thread(reader.read, 0, 0)
            by_b = await b.write({0: [(FAMILY, b"B-2")]})
            late = await a.write({0: [(FAMILY, b"A-late")], 1: [(b"other", b"A-other-2")]})
            again = await a.write({0: [(FAMILY, b"A-later")]})  # fenced stays fenced: no new epoch
            return first, by_b, late, again, restored
        finally:
            await a.close()
            await b.close()

    first, by_b, late, again, restored_by_b = asyncio.run(scenario())
    assert first == ChangelogWrite({0: 1, 1: 1})  # one record each; the commit marker follows it
    assert restored_by_b == [b"A-1"]  # B restored what A had committed
    assert by_b.fenced == frozenset() and set(by_b.after) == {0}
    # A, the zombie: partition 0 fenced, nothing of it committed; partition 1 is still A's own.
    assert late.fenced == frozenset({0})
    assert set(late.after) == {1}
    assert again == ChangelogWrite({}, frozenset({0}))
    # A third owner restoring partition 0 reads A's first state then B's: the latest is B's.
    values, _ = reader.read(0, 0)
    assert values == [b"A-1", b"B-2"]
    assert reader.read(1, 0)[0] == [b"A-other", b"A-other-2"]
