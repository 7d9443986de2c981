"""The offset ledger: a partition commits past processed offsets only, from the position of its seek."""

from __future__ import annotations

import pytest

from services.linker.offset_ledger import OffsetLedger


def test_the_position_moves_over_processed_offsets_and_is_reported_once() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p0": 10})
    assert ledger.advance("p0") is None  # the committed offset itself: nothing new
    for offset in (10, 11, 12):
        ledger.processed("p0", offset)
    assert ledger.advance("p0") == 13
    assert ledger.advance("p0") is None
    ledger.processed("p0", 13)
    assert ledger.advance("p0") == 14
    assert ledger.held() == {}


def test_an_unprocessed_offset_holds_the_commit_until_it_is_processed() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p2": 31})
    for offset in (32, 33, 34):  # 31 was skipped (never seen by a batch)
        ledger.processed("p2", offset)
    assert ledger.advance("p2") is None
    assert ledger.position("p2") == 31
    assert ledger.held() == {"p2": 31}
    ledger.processed("p2", 31)  # delivered again after the seek
    assert ledger.advance("p2") == 35
    assert ledger.held() == {}


def test_offsets_before_the_position_and_repeats_change_nothing() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p1": 5})
    ledger.processed("p1", 3)
    ledger.processed("p1", 5)
    ledger.processed("p1", 5)
    assert ledger.advance("p1") == 6
    ledger.processed("p1", 4)
    assert ledger.advance("p1") is None and ledger.position("p1") == 6


def test_a_seek_keeps_processed_offsets_at_or_past_its_position_and_forgets_other_partitions() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p0": 0, "p1": 0})
    for offset in (0, 1, 5, 6, 9):
        ledger.processed("p0", offset)
    ledger.processed("p1", 0)
    # The group moved p1 elsewhere; p0's committed offset is 4 (this instance's commit of 2 was lost).
    ledger.start({"p0": 4})
    assert ledger.position("p1") is None and ledger.advance("p1") is None
    assert ledger.position("p0") == 4 and ledger.held() == {"p0": 4}
    ledger.processed("p0", 4)
    assert ledger.advance("p0") == 7  # 4, then the kept 5 and 6; 7 and 8 are missing, 9 is done
    assert ledger.held() == {"p0": 7}


def test_records_finished_before_the_seek_count_once_the_seek_places_the_partition() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.processed("p3", 40)
    ledger.processed("p3", 41)
    assert ledger.advance("p3") is None  # not positioned: nothing may be committed
    ledger.start({"p3": 40})
    assert ledger.advance("p3") == 42


def test_an_assignment_without_a_partition_forgets_it() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p0": 0, "p1": 7})
    ledger.keep_only(["p1"])
    assert ledger.position("p0") is None and ledger.position("p1") == 7


def test_a_negative_position_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        OffsetLedger[str]().start({"p0": -1})


def test_a_partition_kept_with_its_own_position_ahead_of_the_commit_starts_there() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p3": 0, "p1": 0})
    for offset in (0, 1, 2, 3, 6):
        ledger.processed("p3", offset)
    ledger.processed("p1", 0)
    # p3's commit of 4 never landed (revoked first); p1's committed offset is ahead of its own (another
    # instance held it in between and committed 9).
    assert ledger.start({"p3": 0, "p1": 9}) == {"p3": 4, "p1": 9}
    assert ledger.advance("p3") == 4 and ledger.advance("p1") is None
    ledger.processed("p3", 4)
    ledger.processed("p3", 5)
    assert ledger.advance("p3") == 7  # 6 was kept


def test_a_delivery_past_the_next_expected_offset_asks_once_to_read_the_skipped_ones_again() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p0": 10})
    assert [ledger.delivered("p0", o) for o in (10, 11)] == [None, None]
    assert ledger.delivered("p0", 15) == 12  # 12..14 never came
    assert [ledger.delivered("p0", o) for o in (16, 17)] == [None, None]  # fetched before the seek back
    assert [ledger.delivered("p0", o) for o in (12, 13, 14, 15, 16, 17, 18)] == [None] * 7
    assert ledger.delivered("p0", 20) == 19  # a new gap


def test_a_skip_over_records_already_processed_needs_no_seek_and_unpositioned_partitions_are_left_alone() -> None:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start({"p0": 0})
    for offset in (0, 1, 2, 3, 4, 6):
        ledger.processed("p0", offset)
    ledger.start({"p0": 0})  # kept: starts at its own position 5, with 6 done
    assert ledger.delivered("p0", 7) == 5  # 5 was never processed
    ledger.start({"p0": 0})
    ledger.processed("p0", 5)
    assert ledger.position("p0") == 7
    assert ledger.delivered("p0", 7) is None  # 5 and 6 skipped, but both are done
    assert ledger.delivered("p0", 8) is None
    assert ledger.delivered("p9", 100) is None  # not positioned: its seek reads it from its start
