"""Benchmark: hostile bodies against the gateway while valid submissions keep coming.

    .venv/bin/python bench/gateway_hostile.py [--bodies 4] [--members 300000]

Serves the gateway (real uvicorn, the fake producer: no broker needed) and, while one client posts
valid submissions in a loop, sends `--bodies` bodies at once that each list `--members` empty members
(300,000 make about 900 KB, under the 1 MiB limit). Prints the 422 size and time of each hostile body
and the latency of the valid requests sent meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support is in the checkout, not installed

from services.gateway.app import build_app  # noqa: E402
from services.gateway.settings import GatewaySettings  # noqa: E402
from tests.support.gateway import FakeSubmissionProducer, sample_body, sample_submission, serving  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--members", type=int, default=300_000)
    args = parser.parse_args()
    doc = sample_submission()
    doc["members"] = [{} for _ in range(args.members)]
    hostile = json.dumps(doc, separators=(",", ":")).encode()
    app = build_app(GatewaySettings(tokens={TOKEN: "bench"}), producer=FakeSubmissionProducer())
    answers: list[tuple[int, int, float]] = []
    valid: list[float] = []
    stop = threading.Event()
    with serving(app) as base:
        url = f"{base}/v1/submissions"

        def post_hostile() -> None:
            start = time.monotonic()
            response = httpx.post(url, content=hostile, headers=HEADERS, timeout=300)
            answers.append((response.status_code, len(response.content), time.monotonic() - start))

        def post_valid() -> None:
            with httpx.Client(timeout=300) as client:
                serial = 0
                while not stop.is_set():
                    start = time.monotonic()
                    client.post(url, content=sample_body(serial % 999 + 1), headers=HEADERS)
                    valid.append(time.monotonic() - start)
                    serial += 1

        background = threading.Thread(target=post_valid)
        background.start()
        time.sleep(0.3)
        senders = [threading.Thread(target=post_hostile) for _ in range(args.bodies)]
        started = time.monotonic()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        wall = time.monotonic() - started
        stop.set()
        background.join()
    print(f"{args.bodies} bodies of {len(hostile):,} bytes at once: all answered after {wall:.2f} s")
    for status, size, seconds in answers:
        print(f"  {status}: {size:,} bytes after {seconds:.2f} s")
    print(
        f"valid requests meanwhile: {len(valid)}, median {statistics.median(valid) * 1000:.1f} ms, "
        f"max {max(valid) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
