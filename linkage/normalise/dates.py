"""Birth dates: parsing, placeholder detection and the day/month-swapped form."""

from __future__ import annotations

import re
from datetime import date, datetime

# Dates registers write when only the year is known (1 July, 31 December).
PLACEHOLDER_DAY_MONTHS = frozenset({(1, 7), (31, 12)})


# Day first, as Indonesian forms write it: 17/08/1945, 17-08-1945, 17.08.1945.
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def parse_date(value: object) -> date | None:
    """A date from a `date`/`datetime`, an ISO `YYYY-MM-DD` or day-first `DD/MM/YYYY` string (also with
    `-` or `.`), or None for anything else, including impossible dates such as 31/02/1990."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    day_first = _DAY_FIRST.match(text)
    if day_first:
        day, month, year = (int(g) for g in day_first.groups())
        try:
            return date(year, month, day)
        except ValueError:
            return None
    if len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def is_placeholder(d: date) -> bool:
    """True for 01-07 and 31-12, the usual stand-ins for an unknown day and month."""
    return (d.day, d.month) in PLACEHOLDER_DAY_MONTHS


def swapped(d: date) -> date | None:
    """The date with day and month exchanged, if that is a valid and different date."""
    if d.day == d.month or d.day > 12:
        return None
    return date(d.year, d.day, d.month)


def parse_year(value: object) -> int | None:
    """A plausible birth year (1880..2030) from an int or a numeric string."""
    if value is None or value == "":
        return None
    try:
        year = int(float(str(value)))
    except ValueError:
        return None
    return year if 1880 <= year <= 2030 else None
