"""How far the change topics were applied: per (topic, partition) the next offset to apply.

Every linker instance reads every change record (services/linker/updates/reader.py) and keeps two kinds of
positions: its engine's (in its journal, `<state_dir>/master-updates.duckdb`: which changes its master
holds) and, per link-store file (`links-p<N>.duckdb`, table `change_positions`), which changes were
applied to that file's members. Pure functions over those positions: a file is in sync with the
engine, behind it (catch it up from the journal), or ahead of it (the previous owner had read further:
wait for this instance's reader).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from services.kafka.record import KafkaRecord

#: (topic, partition) -> the next offset to apply. A missing partition counts as 0 (nothing applied).
Positions = Mapping[tuple[str, int], int]


class FileStatus(Enum):
    """A link-store file compared with this instance's engine."""

    IN_SYNC = "in_sync"
    BEHIND = "behind"  # the engine holds changes the file's members never saw: catch up from the journal
    AHEAD = "ahead"  # the file saw changes this engine has not read yet: wait for the reader


def advanced(positions: Positions, records: Iterable[KafkaRecord]) -> dict[tuple[str, int], int]:
    """`positions` moved past every record of a batch (never backwards)."""
    out = dict(positions)
    for r in records:
        tp = (r.topic, r.partition)
        out[tp] = max(out.get(tp, 0), r.offset + 1)
    return out


def file_status(file: Positions, engine: Positions) -> FileStatus:
    """Whether a file's members saw exactly the engine's changes, fewer, or some the engine lacks."""
    keys = set(file) | set(engine)
    if any(file.get(k, 0) > engine.get(k, 0) for k in keys):
        return FileStatus.AHEAD
    if any(file.get(k, 0) < engine.get(k, 0) for k in keys):
        return FileStatus.BEHIND
    return FileStatus.IN_SYNC


def unseen(position: tuple[str, int, int] | None, file: Positions) -> bool:
    """Whether a journalled change at `position` (topic, partition, offset) is newer than the file.

    Changes journalled before positions were kept (None) were applied to every file of that time.
    """
    if position is None:
        return False
    topic, partition, offset = position
    return offset >= file.get((topic, partition), 0)


def missed(file: Positions, reader: Positions) -> dict[tuple[str, int], tuple[int, int]]:
    """The ranges [start, end) of records a file has not seen but this instance's reader has passed:
    per (topic, partition) where the file's position is behind the reader's (a file ahead, or in sync,
    on a partition: nothing to read there)."""
    return {k: (file.get(k, 0), end) for k, end in sorted(reader.items()) if file.get(k, 0) < end}


def furthest(*positions: Positions) -> dict[tuple[str, int], int]:
    """Per (topic, partition) the highest of the given positions (a position never moves back)."""
    out: dict[tuple[str, int], int] = {}
    for p in positions:
        for k, o in p.items():
            out[k] = max(out.get(k, 0), o)
    return out
