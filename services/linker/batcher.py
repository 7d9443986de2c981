"""Micro-batching: how many members go to the engine in one call.

The faust agent buffers up to `batch_max_members` messages or `batch_wait_seconds` (faust's
`stream.take_events(max_, within=)`); every message holds at least one member, so a buffer can hold more
members than the engine should see at once. `chunk_by_members` cuts the buffer's members into calls of at
most `max_members`, keeping each family's members in one call whenever the family fits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby

from integration.port import MemberQuery


def chunk_by_members(queries: Sequence[MemberQuery], max_members: int) -> Iterator[list[MemberQuery]]:
    """Consecutive chunks of at most `max_members` queries, not splitting a family unless it is too big."""
    if max_members < 1:
        raise ValueError("max_members must be at least 1")
    chunk: list[MemberQuery] = []
    for _, family in groupby(queries, key=lambda q: q.family_key):
        members = list(family)
        if chunk and len(chunk) + len(members) > max_members:
            yield chunk
            chunk = []
        while len(members) > max_members:  # a family larger than a call: split it, in order
            yield members[:max_members]
            members = members[max_members:]
        chunk.extend(members)
    if chunk:
        yield chunk
