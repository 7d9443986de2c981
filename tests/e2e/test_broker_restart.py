"""Broker restart mid-stream: the broker is stopped (SIGTERM, controlled shutdown) and started again on
the same ports and data folder while the linker runs and submissions are being produced.

The broker is a dedicated one (tools/broker.py on free ports in a temporary folder): the session
broker is shared by other tests. The linker process must survive the outage (reconnect, no restart)
and finish with every member linked once, equal to the in-process reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.kafka.io import read_topic
from services.kafka.record import KafkaRecord
from tests.support.e2e import E2EWorld, Linkers, private_topics
from tests.support.linker_service import written
from tests.support.polling import poll_until
from tests.support.processes import holds_connection_to
from tools import broker as broker_service
from tools.pipeline.outcome import wait_for_members
from tools.pipeline.streaming import SubmissionStreamer

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[broker_service.BrokerConfig]:
    port, controller_port = broker_service.free_ports(2)
    config = broker_service.BrokerConfig(run_dir=tmp_path / "broker", port=port, controller_port=controller_port)
    broker_service.start(config)
    try:
        yield config
    finally:
        broker_service.stop(config)


def test_linker_reconnects_after_a_broker_restart_and_loses_nothing(
    own_broker: broker_service.BrokerConfig,
    e2e_world: E2EWorld,
    reference_members: dict[str, bytes],
    linkers: Linkers,
) -> None:
    bootstrap = own_broker.bootstrap
    topics, group = private_topics(bootstrap)
    subs = e2e_world.submissions
    linker = linkers.start(bootstrap, topics, group)
    streamer = SubmissionStreamer(bootstrap, topics.submissions, subs.records, subs.members, rate=150.0)
    streamer.start()

    def linked() -> list[KafkaRecord]:
        linker.check_running()
        return read_topic(bootstrap, topics.members)

    poll_until(linked, 120, lambda: f"the linker linked nothing:\n{linker.log_tail()}")
    sent_before = streamer.sent_members
    old_pid = broker_service.status(own_broker).pid
    assert linker.pid is not None and holds_connection_to(linker.pid, own_broker.port)
    assert broker_service.stop(own_broker)
    assert not broker_service.status(own_broker).running
    # The linker has seen the broker gone: it closed its connections to it (and keeps retrying).
    poll_until(lambda: not holds_connection_to(linker.pid or 0, own_broker.port), 60, linker.log_tail)
    assert linker.alive(), f"the linker died with the broker:\n{linker.log_tail()}"
    restarted = broker_service.start(own_broker)
    assert restarted.running and restarted.pid != old_pid and restarted.bootstrap == bootstrap
    mark = written(bootstrap, topics.members)  # records beyond this were written after the restart

    streamer.join(240)
    assert streamer.error is None and streamer.sent_records == len(subs.records)
    assert 0 < sent_before < sum(subs.members)  # the outage really fell mid-stream

    def died() -> str | None:
        return None if linker.alive() else f"the linker exited ({linker.returncode()}):\n{linker.log_tail()}"

    expected = subs.expected_member_keys()
    outcome = wait_for_members(  # every submission committed: last revisions reuse member keys
        bootstrap, topics.members, expected, timeout_s=240, failure=died, consumed_by=(group, topics.submissions)
    )
    assert outcome.conflicting_keys() == []
    assert outcome.latest() == reference_members
    assert linker.starts == 1  # the same process, reconnected
    assert written(bootstrap, topics.members) > mark  # and it linked after the restart
    assert linker.stop() == 0, linker.log_tail()
