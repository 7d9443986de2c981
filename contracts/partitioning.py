"""Which partition a keyed record goes to: the partitioning rule of the topic catalogue (by district).

Every topic keyed by family key (REGSOSEK22-K, 22 digits), member key `<family key>-<serial>` or field
feedback item id `<family key>/<kind>...` is partitioned by the family's **district**: the first 7 digits
of the family key (BPS province 2 + regency 2 + district 3), hashed with Kafka's murmur2 (sign bit
cleared, modulo the number of partitions). Every other key (NIKs of the change topics, pseudonymous slot
keys) is hashed whole, as Kafka's default partitioner does.

Why the district: all revisions of a family, all its members and all families of one district land on
the same partition number on every such topic (co-partitioning: a consumer joining
`linkage.members.v1` with `linkage.families.v1` finds both on one partition number), and a partition
owns whole districts, so a linker instance can hold only the master rows of the districts its
partitions cover (docs/capacity.md). The gateway, the simulator, the linker's producer and the tests
all partition with `producer_partitioner`; a Java, Node or Go client's default partitioner would NOT
put a family key where this rule does (use `partition_for`).

Pure functions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

#: Province (2) + regency (2) + district (3) digits at the start of a family key.
DISTRICT_DIGITS = 7
_FAMILY_KEY = re.compile(rb"^(\d{22})$")
_MEMBER_KEY = re.compile(rb"^(\d{22})-\d{2}$")
#: A field feedback item id `<family key>/<kind>[/<serial>]` (contracts.feedback).
_FEEDBACK_KEY = re.compile(rb"^(\d{22})/[a-z_]+(?:/\d{2})?$")
_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of `data` (as the Java client's `Utils.murmur2`), unsigned."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_key(key: bytes) -> bytes:
    """The bytes a record is partitioned by: the district of a family-keyed record, otherwise the key."""
    match = _FAMILY_KEY.match(key) or _MEMBER_KEY.match(key) or _FEEDBACK_KEY.match(key)
    return match.group(1)[:DISTRICT_DIGITS] if match else key


def partition_for(key: bytes, partitions: int) -> int:
    """The partition number of a record with `key` on a topic of `partitions` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (murmur2(partition_key(key)) & 0x7FFFFFFF) % partitions


def producer_partitioner(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """The rule in the shape aiokafka (and faust's `producer_partitioner`) calls a partitioner.

    A record without a key goes to a random available partition, as with the default partitioner.
    """
    if key is None:
        return random.choice(list(available) or list(all_partitions))  # noqa: S311 - spreading, not security
    ordered = sorted(all_partitions)
    return ordered[partition_for(key, len(ordered))]
