"""Cost of the CloudEvents headers per output record (services.kafka.events), the linker's extra work per record.

Run: PYTHONPATH=. .venv/bin/python bench/event_headers.py
"""

from __future__ import annotations

import datetime as dt
import time

from contracts import events as ce
from services.kafka.events import EventStamper


def main(n: int = 50_000) -> None:
    """Print microseconds per record for a typical member record (about 600 bytes)."""
    stamp = EventStamper({"linkage.members.v1": ce.MEMBER}, ce.LINKER_SOURCE)
    when = dt.datetime(2022, 10, 20, 2, 15, tzinfo=dt.UTC)
    value = b'{"x":"' + b"a" * 600 + b'"}'
    started = time.perf_counter()
    for i in range(n):
        stamp("linkage.members.v1", b"3603010001000100001001-%02d" % (i % 99 + 1), value, when)
    per = (time.perf_counter() - started) / n * 1e6
    print(f"{n} records: {per:.1f} us per record (headers + timestamp), {1e6 / per:,.0f} records/s on one core")


if __name__ == "__main__":
    main()
