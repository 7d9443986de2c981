"""A small sampling profiler for the linker process: where do its threads spend the time?

cProfile sees only the thread that enabled it, and the linker links in a worker thread; this samples
every Python thread's stack (`sys._current_frames`) at a fixed interval and attributes each sample to
one stage of the pipeline, by the innermost frame that belongs to a known stage. Samples whose
innermost frame waits (selector, condition, queue) count as idle. Totals are written to a JSON file
every second, so a reader can diff two snapshots around a measured phase.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

# (stage, path fragments): the first stage whose fragment is in a frame's file name, innermost first.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("engine", ("/linkage/", "/services/linker/engine_link.py")),
    ("link store", ("/duckdb", "/services/linker/store.py")),
    ("decoding", ("/contracts/", "/pydantic", "/services/linker/deadletter.py", "/json/")),
    (
        "building outputs",
        ("/integration/outputs.py", "/services/linker/pipeline.py", "/integration/mapping.py", "/integration/ids.py"),
    ),
    (
        "producing",
        ("/aiokafka/producer", "/faust/transport/producer", "/faust/topics.py", "/faust/transport/drivers/aiokafka.py"),
    ),
    (
        "consuming",
        (
            "/aiokafka/consumer",
            "/faust/transport/consumer",
            "/faust/streams.py",
            "/faust/channels.py",
            "/faust/agents/",
        ),
    ),
    # Wire protocol and sockets of both directions (record batches are built and parsed here too).
    (
        "kafka client I/O",
        (
            "/aiokafka/conn.py",
            "/aiokafka/client.py",
            "/aiokafka/record",
            "/aiokafka/protocol",
            "/asyncio/selector_events.py",
            "/asyncio/streams.py",
        ),
    ),
)
# Waiting, not working: the event loop's select, conditions and queues, an idle executor thread.
IDLE_FILES = ("selectors.py", "threading.py", "queue.py", "concurrent/futures/thread.py")


def stage_of(frame: FrameType | None) -> str:
    """The pipeline stage of one thread's stack (innermost frame first)."""
    if frame is None:
        return "idle"
    if frame.f_code.co_filename.endswith(IDLE_FILES):
        return "idle"
    f: FrameType | None = frame
    while f is not None:
        name = f.f_code.co_filename
        for stage, fragments in STAGES:
            if any(fragment in name for fragment in fragments):
                return stage
        f = f.f_back
    return "other"


class StackSampler(threading.Thread):
    """Samples all threads every `interval_s` and keeps `Counter(stage -> samples)`."""

    def __init__(self, out: Path, interval_s: float = 0.005) -> None:
        super().__init__(name="stack-sampler", daemon=True)
        self.out = out
        self.interval_s = interval_s
        self.counts: Counter[str] = Counter()
        self.other: Counter[str] = Counter()  # innermost frames of "other" samples, to refine STAGES

    def run(self) -> None:
        me = threading.get_ident()
        last_dump = time.monotonic()
        while True:
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    stage = stage_of(frame)
                    self.counts[stage] += 1
                    if stage == "other":
                        self.other[f"{frame.f_code.co_filename}:{frame.f_code.co_name}"] += 1
            now = time.monotonic()
            if now - last_dump >= 1.0:
                self.dump()
                last_dump = now
            time.sleep(self.interval_s)

    def dump(self) -> None:
        """Write the totals atomically (a reader never sees half a file)."""
        tmp = self.out.with_suffix(".tmp")
        doc = {
            "at": time.time(),
            "pid": os.getpid(),
            "samples": dict(self.counts),
            "other": dict(self.other.most_common(15)),
        }
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.out)


def read_samples(path: Path) -> dict[str, int]:
    """The totals last written to `path` (empty when none yet)."""
    try:
        return {k: int(v) for k, v in json.loads(path.read_text())["samples"].items()}
    except (OSError, ValueError, KeyError):
        return {}
