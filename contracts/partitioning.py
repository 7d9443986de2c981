"""Which partition a keyed record goes to: the co-partitioning rule of the topic catalogue.

Records of one family land on the same partition number on every topic keyed by family or member key
(`contracts.topics`): a member key `<family key>-<serial>` and a feedback item id `<family key>/<kind>...`
are partitioned by their family key, every other
key by itself, with Kafka's default hash (murmur2 of the key bytes, sign bit cleared, modulo the number
of partitions). So a family record keyed by its family key goes where any Kafka client's default
partitioner sends it (the submissions included), and its members follow it. A consumer that joins
`linkage.members.v1` with `linkage.families.v1` finds both on the same partition number.

Pure functions; the linker's producer uses `producer_partitioner`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

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
    """The bytes a record is partitioned by: the family key of a member key, otherwise the key itself."""
    match = _MEMBER_KEY.match(key) or _FEEDBACK_KEY.match(key)
    return match.group(1) if match else key


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
