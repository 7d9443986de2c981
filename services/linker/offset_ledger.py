"""Which offset a partition may commit: the first one the linker has not finished, never one past it.

faust commits, per partition, the end of the first consecutive run of the offsets its streams acked.
Two things in faust 0.15 break at-least-once across a rebalance (both seen losing a submission in the
kill/takeover test, docs/linker.md "Offsets"):

- a stream ACKS the messages it skips because they were fetched in an older generation, or arrived
  while the flow was suspended: they count as done although no batch ever saw them;
- the run is measured from the first acked offset, not from the committed position, and a revocation
  forgets the committed position before the last commits of the revoked partitions: a commit then
  moves past an offset no batch processed, and the next owner starts after it.

The ledger keeps its own account. `start()` takes the committed positions the consumer seeks to after
an assignment; `processed()` is called for each record whose batch is durable (outputs acknowledged,
state stored); `advance()` gives the offset to commit: the position moved past processed offsets only,
one by one. An offset the linker has not processed holds the partition's commit where it is.

Two more faust habits are answered here rather than trusted:

- faust seeks only partitions with a committed offset above 0; one with none keeps whatever position
  its fetcher had (seen: a survivor taking over a never-committed partition read it from its middle).
  `start()` returns the position of every partition and the consumer seeks each one there. A partition
  this instance kept through the rebalance starts at its own position when that is ahead of the
  committed one (the commit of records it processed did not land before the revocation): everything
  before it is durable.
- records can be skipped on the way to the agent. `delivered()` sees each record the agent gets, in
  order per partition; a record past the next expected offset means the ones between were skipped, and
  it returns the offset to seek back to (once per gap: the records fetched after the gap still arrive
  before the re-read ones, and are processed twice, which the linker's idempotent outputs allow).

Nothing here does I/O: the consumer adapter (services/linker/strict_commit.py) feeds it.

The input topics of the linker carry no transaction markers and are not compacted (contracts/topics.py),
so their offsets are dense; a gap faust detects is not treated as done.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class _Partition:
    position: int | None  # the next offset to commit (None: not known since the assignment)
    done: set[int] = field(default_factory=set)  # processed offsets at or past the position
    reported: int | None = None  # the last position `advance()` returned
    expected: int | None = None  # the next offset the consumer should deliver
    rewound_to: int | None = None  # the offset of the last seek back (one per gap)


class OffsetLedger(Generic[K]):
    """Per partition: the next offset to commit, and the processed offsets past it."""

    def __init__(self) -> None:
        self._parts: dict[K, _Partition] = {}

    def start(self, positions: Mapping[K, int]) -> dict[K, int]:
        """The committed positions after an assignment's seek; returns where each partition starts.

        A partition kept since the last assignment starts at its own position when that is ahead (its
        records before it are durable; only their commit was lost); its processed offsets at or past
        the start are kept. Other partitions are forgotten. The consumer must seek each partition to
        the returned offset, and may commit it when it is ahead of the committed one.
        """
        for key in [k for k in self._parts if k not in positions]:
            del self._parts[key]
        starts: dict[K, int] = {}
        for key, committed in positions.items():
            if committed < 0:
                raise ValueError(f"a position is an offset, not {committed}")
            part = self._parts.get(key)
            own = part.position if part is not None and part.position is not None else committed
            position = max(committed, own)
            done = {o for o in part.done if o >= position} if part is not None else set()
            new = self._parts[key] = _Partition(position, done, committed, expected=position)
            self._settle(new)
            starts[key] = position
        return starts

    def keep_only(self, keys: Iterable[K]) -> None:
        """Forget every partition not in `keys` (an assignment took them away)."""
        kept = set(keys)
        for key in [k for k in self._parts if k not in kept]:
            del self._parts[key]

    def processed(self, key: K, offset: int) -> None:
        """The record at `offset` is done: its outputs are acknowledged and its state stored."""
        part = self._parts.get(key)
        if part is None:
            # Not positioned yet (a batch finished between an assignment and its seek): kept until the
            # seek tells where the partition starts.
            part = self._parts[key] = _Partition(None)
        if part.position is not None and offset < part.position:
            return
        part.done.add(offset)
        self._settle(part)

    def advance(self, key: K) -> int | None:
        """The offset to commit for `key` if it moved since the last call (or the seek), else None."""
        part = self._parts.get(key)
        if part is None or part.position is None or part.position == part.reported:
            return None
        part.reported = part.position
        return part.position

    def delivered(self, key: K, offset: int) -> int | None:
        """The agent got the record at `offset`; returns an offset to seek back to if records before
        it were skipped (None: nothing skipped, or that gap was already sought back to)."""
        part = self._parts.get(key)
        if part is None or part.expected is None:
            return None  # not positioned: the seek that positions it reads from its start
        if offset == part.expected:
            part.expected += 1
            return None
        if offset < part.expected or part.rewound_to == part.expected:
            return None  # a record read again after a seek, or one fetched before the seek back
        position = part.position if part.position is not None else part.expected
        if all(o < position or o in part.done for o in range(part.expected, offset)):
            part.expected = offset + 1  # the skipped ones are already done
            return None
        part.rewound_to = part.expected
        return part.expected

    def position(self, key: K) -> int | None:
        """The next offset to commit (None: not positioned)."""
        part = self._parts.get(key)
        return None if part is None else part.position

    def held(self) -> dict[K, int]:
        """Partitions whose commit waits on an unprocessed offset with later ones done: key -> that offset."""
        return {k: p.position for k, p in self._parts.items() if p.position is not None and p.done}

    @staticmethod
    def _settle(part: _Partition) -> None:
        if part.position is None:
            return
        done = part.done
        while part.position in done:
            done.discard(part.position)
            part.position += 1
