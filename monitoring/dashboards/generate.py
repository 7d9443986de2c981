"""Render every dashboard to JSON: `python -m monitoring.dashboards.generate [--check]`.

Writes monitoring/grafana/dashboards/<uid>.json. With --check nothing is written and the exit status is 1
when a committed file differs from what the code generates (the test suite does the same).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from monitoring.dashboards.pipeline import pipeline_dashboard
from monitoring.dashboards.publisher import publisher_dashboard
from monitoring.dashboards.quality import quality_dashboard
from monitoring.dashboards.region import region_dashboard
from monitoring.dashboards.review import review_dashboard

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"
BUILDERS: tuple[Callable[[], Dashboard], ...] = (
    pipeline_dashboard,
    quality_dashboard,
    region_dashboard,
    publisher_dashboard,
    review_dashboard,
)


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard (stable: sorted keys, trailing newline)."""
    rendered = {}
    for build in BUILDERS:
        board = build().build()
        text = json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
        rendered[f"{board.uid}.json"] = text
    return rendered


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the dashboards; returns the exit status."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name, text in render_all().items():
        path = OUTPUT_DIR / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            stale.append(name)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    verb = "differ from the code" if check else "written"
    print(f"{len(stale)} dashboard(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
