"""The linker's master-sharding switch: off by default, fails fast when it cannot work, and hands the
submissions topic's partition count to the engine with the partitions to hold."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from services.linker.app import master_shard_holder
from services.linker.errors import LinkerConfigError
from services.linker.settings import LinkerSettings
from tests.support.linker import FakeMemberLinker


class ShardedFake(FakeMemberLinker):
    """The fake engine with the sharded engine's two members: records what it is asked to hold."""

    sharded = True
    asked: list[tuple[set[int], int]]
    only: list[bool]

    def hold_partitions(self, partitions: Collection[int], partition_count: int, *, only: bool = False) -> int:
        self.asked.append((set(partitions), partition_count))
        self.only = [*getattr(self, "only", []), only]
        return 7


def test_off_by_default() -> None:
    assert LinkerSettings().master_sharding is False
    assert master_shard_holder(LinkerSettings(), FakeMemberLinker({})) is None


def test_an_engine_without_a_shard_is_refused() -> None:
    with pytest.raises(LinkerConfigError, match="holds no shard"):
        master_shard_holder(LinkerSettings(master_sharding=True), FakeMemberLinker({}))


def test_the_catalogue_partition_count_or_the_setting() -> None:
    engine = ShardedFake()
    engine.asked = []
    hold = master_shard_holder(LinkerSettings(master_sharding=True), engine)
    assert hold is not None and hold({1, 3}) == 7
    assert engine.asked == [({1, 3}, 4)]  # regsosek.submissions.v1 has 4 partitions in the catalogue
    private = LinkerSettings(master_sharding=True, submissions_topic="private.submissions")
    unknown = master_shard_holder(private, engine)
    assert unknown is not None and unknown({2}, 8) == 7 and engine.asked[-1] == ({2}, 8)  # the broker's count
    with pytest.raises(RuntimeError, match="MASTER_SHARD_PARTITIONS"):  # neither the broker nor a setting
        unknown({2})
    hold = master_shard_holder(private.model_copy(update={"master_shard_partitions": 64}), engine)
    assert hold is not None and hold({63}) == 7 and engine.asked[-1] == ({63}, 64)


def test_the_count_the_broker_reports_wins_over_the_catalogue() -> None:
    # Topics created with `regsosek topics create --partitions 64`: the consumer's metadata says 64.
    engine = ShardedFake()
    engine.asked = []
    hold = master_shard_holder(LinkerSettings(master_sharding=True), engine)
    assert hold is not None
    hold({5}, 64)
    hold({5}, None)  # metadata not known yet: the catalogue's 4
    assert engine.asked == [({5}, 64), ({5}, 4)]


def test_the_assignment_call_holds_only_the_assigned_partitions() -> None:
    # the linker's assignment callback passes the whole assignment with only=True (revoked partitions'
    # districts are dropped); the batch path adds without dropping
    engine = ShardedFake()
    engine.asked = []
    hold = master_shard_holder(LinkerSettings(master_sharding=True), engine)
    assert hold is not None
    hold({0, 2}, 4, only=True)
    hold({2})
    assert engine.asked == [({0, 2}, 4), ({2}, 4)] and engine.only == [True, False]
