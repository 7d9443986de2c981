"""The co-partitioning rule (contracts.partitioning): Kafka's hash, member keys follow their family."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from contracts.partitioning import murmur2, partition_for, partition_key, producer_partitioner


def test_murmur2_equals_both_kafka_clients_on_every_length() -> None:
    rng = random.Random(14)
    for length in range(0, 40):
        for _ in range(25):
            data = rng.randbytes(length)
            assert murmur2(data) == kafka_python_murmur2(data) & 0xFFFFFFFF, data
            assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF, data


def test_a_family_key_goes_where_the_default_partitioner_sends_it() -> None:
    rng = random.Random(6)
    for _ in range(500):
        family = "".join(rng.choice("0123456789") for _ in range(22)).encode()
        default = (kafka_python_murmur2(family) & 0x7FFFFFFF) % 4
        assert partition_for(family, 4) == default


def test_every_member_key_lands_on_its_family_partition() -> None:
    rng = random.Random(7)
    moved_by_default = 0
    for _ in range(300):
        family = "".join(rng.choice("0123456789") for _ in range(22))
        for serial in range(1, 8):
            member = f"{family}-{serial:02d}".encode()
            assert partition_for(member, 4) == partition_for(family.encode(), 4)
            moved_by_default += (kafka_python_murmur2(member) & 0x7FFFFFFF) % 4 != partition_for(member, 4)
    # The default partitioner would have scattered most members (what the issue measured: 7,439/9,950).
    assert moved_by_default > 1000


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"3603010001000100001001-07", b"3603010001000100001001"),
        (b"3603010001000100001001", b"3603010001000100001001"),
        (b"3603010001000100001001-7", b"3603010001000100001001-7"),  # not a member key: hashed as is
        (b"x3603010001000100001001-07", b"x3603010001000100001001-07"),
        (b"", b""),
    ],
)
def test_partition_key(key: bytes, expected: bytes) -> None:
    assert partition_key(key) == expected


def test_producer_partitioner_uses_the_topic_partitions_and_spreads_keyless_records() -> None:
    key = b"3603010001000100001001-02"
    assert producer_partitioner(key, [3, 0, 2, 1], [0]) == partition_for(key, 4)
    assert producer_partitioner(key, [0], []) == 0
    assert producer_partitioner(None, [0, 1, 2, 3], [2]) == 2
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(key, 0)
