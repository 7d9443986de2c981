"""Checks of user-supplied linkage-record files before any library sees them.

A data-shaped problem (no rows, a missing column, values that are not what they claim to be) must reach
the user as one clear line, never as a library traceback deep in training. Values that cannot be used
(a birth date such as 31/02/1990) become unknown, like any missing value, and are counted so the
caller can report them: they are never silently taken for something else.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from linkage.records import LINKAGE_COLUMNS


class LinkInputError(ValueError):
    """An input file cannot be linked as it is (the message is one line naming the problem)."""


class MissingColumnError(LinkInputError):
    """An input file lacks a required column."""

    def __init__(self, what: str, column: str) -> None:
        self.column = column
        super().__init__(f"{what} has no column {column!r}; expected columns: {', '.join(LINKAGE_COLUMNS)}")


def check_columns(table: pa.Table, what: str) -> None:
    """Raise `MissingColumnError` naming the first required column `table` lacks."""
    for column in LINKAGE_COLUMNS:
        if column not in table.column_names:
            raise MissingColumnError(what, column)


def check_input(table: pa.Table, what: str) -> None:
    """Raise `LinkInputError` when `table` lacks a column, has no rows or repeats a record id."""
    check_columns(table, what)
    if table.num_rows == 0:
        raise LinkInputError(f"{what} has no rows (only a header?)")
    ids = table.column("record_id")
    if ids.null_count:
        raise LinkInputError(f"{what} has {ids.null_count} rows without a record_id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise LinkInputError(f"{what} repeats record ids: each record_id must be unique")


@dataclass(frozen=True)
class Unusable:
    """Values given in a raw column that preparation could not use (they count as unknown)."""

    column: str
    count: int
    first_row: int  # 1-based row number of the first one (no value echoed: it may be personal data)

    def message(self, what: str) -> str:
        """One line for the user."""
        return (
            f"{what}: {self.count} {self.column} value(s) are not valid and are treated as unknown "
            f"(first at data row {self.first_row})"
        )


# raw column -> the prepared column that is NULL when the raw value could not be used
_CHECKED = {"birth_date": "birth_date", "birth_year": "birth_year"}


def unusable_values(raw: pa.Table, prepared: pa.Table) -> list[Unusable]:
    """Raw values that were given (non-empty) but came out NULL after preparation.

    `birth_year` is checked only where no valid birth date supplied the year."""
    out: list[Unusable] = []
    for column, prepared_column in _CHECKED.items():
        if column not in raw.column_names:
            continue
        text = pc.utf8_trim_whitespace(raw.column(column).cast(pa.string()))
        given = pc.and_(pc.is_valid(text), pc.not_equal(text, ""))
        lost = pc.and_(pc.fill_null(given, False), pc.is_null(prepared.column(prepared_column)))
        count = pc.sum(lost).as_py() or 0
        if count:
            first = pc.index(lost, True).as_py()
            out.append(Unusable(column, int(count), int(first) + 1))
    return out
