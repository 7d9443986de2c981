"""How far the linker's submissions agent got: a change waits until it has caught up (ordering)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from faust.types import EventT


class SubmissionsProgress:
    """How far the submissions agent got, to tell whether it has caught up with the topic's end."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def handled(self, events: Sequence[EventT[Any]]) -> None:
        """Record a finished submissions batch."""
        for event in events:
            msg = event.message
            self._next[msg.partition] = max(self._next.get(msg.partition, 0), msg.offset + 1)

    def caught_up(self, ends: Mapping[int, int | None], committed: Mapping[int, int | None]) -> bool:
        """True when every partition's end offset is handled (or was committed before this process)."""
        for partition, end in ends.items():
            if end is None or end < 0:
                return False
            done = max(self._next.get(partition, 0), committed.get(partition) or 0)
            if done < end:
                return False
        return True
