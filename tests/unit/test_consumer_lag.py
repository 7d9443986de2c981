"""Consumer lag: the publisher's gauge (end offset - position) and the updates reader's lag in the linker."""

from __future__ import annotations

from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from services.kafka.record import KafkaRecord
from services.observability.consumer_lag import ConsumerLag
from services.observability.linker_metrics import LinkerMetrics
from services.observability.recorder import BatchRecorder

NAME = "regsosek_publisher_consumer_lag_messages"
M0, M1, F0 = TopicPartition("members", 0), TopicPartition("members", 1), TopicPartition("families", 0)


class FakeConsumer:
    def __init__(self, ends: dict[TopicPartition, int], positions: dict[TopicPartition, int]) -> None:
        self.ends, self.positions, self.fail = ends, positions, False
        self.end_calls = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.end_calls += 1
        if self.fail:
            raise KafkaTimeoutError("no answer")
        return {tp: self.ends[tp] for tp in partitions}

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


def lag(registry: CollectorRegistry, topic: str, partition: int) -> float | None:
    return registry.get_sample_value(NAME, {"topic": topic, "partition": str(partition)})


def test_lag_is_end_minus_position_and_revoked_partitions_disappear() -> None:
    registry, now = CollectorRegistry(), [0.0]
    gauge = ConsumerLag(registry, NAME, interval_s=5.0, clock=lambda: now[0])
    consumer = FakeConsumer({M0: 120, M1: 40, F0: 7}, {M0: 100, M1: 40, F0: 0})
    assert gauge.maybe_report(consumer)
    assert (lag(registry, "members", 0), lag(registry, "members", 1), lag(registry, "families", 0)) == (20, 0, 7)
    # Within the interval: no broker round trip, values kept.
    consumer.positions[M0] = 120
    now[0] = 4.9
    assert not gauge.maybe_report(consumer) and consumer.end_calls == 1
    assert lag(registry, "members", 0) == 20
    # A rebalance took families-0 away: its series goes, the rest is refreshed.
    del consumer.positions[F0]
    now[0] = 5.0
    assert gauge.maybe_report(consumer)
    assert (lag(registry, "members", 0), lag(registry, "families", 0)) == (0, None)


def test_a_broker_error_keeps_the_last_values_and_never_raises() -> None:
    registry, now = CollectorRegistry(), [0.0]
    gauge = ConsumerLag(registry, NAME, interval_s=1.0, clock=lambda: now[0])
    consumer = FakeConsumer({M0: 9}, {M0: 4})
    gauge.maybe_report(consumer)
    consumer.fail, now[0] = True, 2.0
    assert not gauge.maybe_report(consumer)
    assert lag(registry, "members", 0) == 5


def change(partition: int, offset: int) -> KafkaRecord:
    return KafkaRecord("dukcapil.changes", partition, offset, b"ref", b"{}", 0)


def test_the_linker_reports_the_updates_readers_lag() -> None:
    registry = CollectorRegistry()
    recorder = BatchRecorder(LinkerMetrics(registry), dlq_topic="dlq", clock=lambda: 1000.0)
    ends = {("dukcapil.changes", 0): 50, ("dukcapil.changes", 1): 12}
    recorder.bind_highwater(lambda topic, partition: ends[(topic, partition)])
    recorder.changes_done([change(0, 9), change(0, 10), change(1, 11)], [])
    recorder.refresh_lag()

    def value(partition: int) -> float | None:
        labels = {"topic": "dukcapil.changes", "partition": str(partition)}
        return registry.get_sample_value("regsosek_consumer_lag_messages", labels)

    assert (value(0), value(1)) == (39, 0)
