"""The partitioning rule (contracts.partitioning): Kafka's hash of the district; members follow their family."""

from __future__ import annotations

import random
from collections import Counter

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


def test_a_family_key_goes_where_its_district_hashes() -> None:
    rng = random.Random(6)
    moved_by_default = 0
    for _ in range(500):
        family = "".join(rng.choice("0123456789") for _ in range(22)).encode()
        by_district = (kafka_python_murmur2(family[:7]) & 0x7FFFFFFF) % 4
        assert partition_for(family, 4) == by_district
        moved_by_default += (kafka_python_murmur2(family) & 0x7FFFFFFF) % 4 != by_district
    # A client's default partitioner (the whole key) would put most families elsewhere: about 3 in 4.
    assert 300 < moved_by_default < 450


def test_every_family_of_a_district_shares_a_partition_and_districts_spread() -> None:
    rng = random.Random(8)
    same = {partition_for(f"3603010{rng.randrange(10**15):015d}".encode(), 8) for _ in range(200)}
    assert len(same) == 1
    spread = Counter(partition_for(f"3603{d:03d}{0:015d}".encode(), 4) for d in range(10, 1000, 10))
    assert sorted(spread) == [0, 1, 2, 3]
    assert max(spread.values()) < 40  # of 99 districts: no partition takes much more than its quarter


def test_every_member_key_lands_on_its_family_partition() -> None:
    rng = random.Random(7)
    moved_by_default = 0
    for _ in range(300):
        family = "".join(rng.choice("0123456789") for _ in range(22))
        for serial in range(1, 8):
            member = f"{family}-{serial:02d}".encode()
            feedback = f"{family}/member_not_found/{serial:02d}".encode()
            assert partition_for(member, 4) == partition_for(family.encode(), 4)
            assert partition_for(feedback, 4) == partition_for(family.encode(), 4)
            moved_by_default += (kafka_python_murmur2(member) & 0x7FFFFFFF) % 4 != partition_for(member, 4)
    # The default partitioner would have scattered most members (what the issue measured: 7,439/9,950).
    assert moved_by_default > 1000


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"3603010001000100001001-07", b"3603010"),
        (b"3603010001000100001001", b"3603010"),
        (b"3603010001000100001001/kk_mismatch", b"3603010"),
        (b"3603010001000100001001-7", b"3603010001000100001001-7"),  # not a member key: hashed as is
        (b"3603010001000100001", b"3603010001000100001"),  # too short for a family key
        (b"3174012345678901", b"3174012345678901"),  # a NIK (change topics): hashed whole
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
