"""Benchmark: the review app's queue and task pages with many open tasks (in process, SQLite state).

    .venv/bin/python bench/review.py [--tasks 100000] [--requests 200] [--order age|uncertainty]

Fills a fresh state file with `--tasks` open review tasks over 50 districts (3 candidates each with
probabilities that vary from task to task, a third in DTKS deciles 1-4), then times `--requests` GETs
of the queue page (alternating no filter and a district filter) and of task pages through the ASGI app
(FastAPI TestClient: routing, SQLite, Jinja2; no network), with the queue in `--order`
(REGSOSEK_REVIEW_QUEUE_ORDER). Prints p50/p99/max in ms and writes
.run/bench/review-results[-uncertainty].json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from contracts.review_decisions import ReviewerRole  # noqa: E402
from contracts.submission import FAMILY_SUBMISSION_ADAPTER  # noqa: E402
from services.review.app import build_app  # noqa: E402
from services.review.settings import ReviewSettings  # noqa: E402
from services.review.store import ReviewStore  # noqa: E402
from services.review.users import UserStore  # noqa: E402
from tests.support.gateway import sample_submission  # noqa: E402
from tests.support.review import PASSWORD, FakeProducer, sample_master, sample_task  # noqa: E402


def _fill(store: ReviewStore, n: int) -> list[str]:
    base = sample_task(1)
    ids, batch = [], []
    t0 = 1_796_000_000_000
    for i in range(n):
        district = f"3603{i % 50:03d}"
        key = f"{district}{i % 997:03d}0001{i // 997 % 100:02d}{i % 1000:03d}{i // 1000 % 1000:03d}-01"
        top = 0.5 + (i * 7919 % 490) / 1000
        ranked = [
            c.model_copy(update={"probability": round(top * (1 - 0.3 * k), 4)}) for k, c in enumerate(base.candidates)
        ]
        task = base.model_copy(
            update={
                "task_id": f"{key}/r1",
                "member_key": key,
                "candidates": ranked,
                "probability": ranked[0].probability,
                "dtks_decile": 2 if i % 3 == 0 else None,
            }
        )
        batch.append(("review", task, t0 + i * 1000))
        ids.append(task.task_id)
        if len(batch) == 5000:
            store.ingest(batch, {})
            batch = []
    store.ingest([*batch, ("submission", FAMILY_SUBMISSION_ADAPTER.validate_python(sample_submission(1)), t0)], {})
    return ids


def _timed(client: TestClient, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--order", choices=["age", "uncertainty"], default="age")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = ReviewSettings(
            state_path=Path(tmp) / "review.sqlite", users_file=Path(tmp) / "u.json", queue_order=args.order
        )
        store = ReviewStore(settings.state_path)
        started = time.perf_counter()
        ids = _fill(store, args.tasks)
        fill_s = time.perf_counter() - started
        users = UserStore({})
        users.add("bench", PASSWORD, ReviewerRole.REVIEWER)
        app = build_app(
            settings, store=store, producer=FakeProducer(), users=users, master=sample_master(), ingest=False
        )
        with TestClient(app) as client:
            page = client.get("/login").text
            csrf = page.split('name="csrf" value="')[1].split('"')[0]
            client.post("/login", data={"csrf": csrf, "user": "bench", "password": PASSWORD})
            queue = _timed(client, ["/" if i % 2 else "/?district=3603007" for i in range(args.requests)])
            step = max(1, len(ids) // args.requests)
            tasks = _timed(client, [f"/tasks/{ids[i * step]}" for i in range(args.requests)])
    result = {
        "tasks": args.tasks,
        "requests": args.requests,
        "order": args.order,
        "fill_s": round(fill_s, 1),
        "queue_ms": _summary(queue),
        "task_ms": _summary(tasks),
    }
    out = ROOT / ".run" / "bench" / f"review-results{'' if args.order == 'age' else '-' + args.order}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
