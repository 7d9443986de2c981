"""A picture of a run, drawn from Prometheus query results (altair + vl-convert, no browser needed).

`render_run_picture` queries a running Prometheus over a time window and writes a PNG of four panels
that mirror the dashboards: gateway answers by status code, records consumed and produced by the linker,
Dukcapil decisions by band, and members linked per district. Used by the Prometheus integration test
and to make the picture in docs/.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert

from tools.observability.prom_api import PrometheusApi

#: (panel title, PromQL, label that names the line)
PANELS: tuple[tuple[str, str, str], ...] = (
    (
        "Gateway answers (cumulative, by status code)",
        'sum by (code) (regsosek_gateway_requests_total{route="/v1/submissions"}) > 0',
        "code",
    ),
    (
        "Linker records in / out (cumulative, by topic)",
        'label_replace(sum by (topic) (regsosek_messages_consumed_total), "io", "in: $1", "topic", "(.*)")'
        ' or label_replace(sum by (topic) (regsosek_messages_produced_total) > 0, "io", "out: $1", "topic", "(.*)")',
        "io",
    ),
    ("Dukcapil decisions (cumulative, by band)", 'sum by (band) (linkage_decisions_total{source="dukcapil"})', "band"),
    ("Members auto-linked per district", "sum by (district) (regsosek_region_members_linked)", "district"),
)


def _rows(api: PrometheusApi, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
    rows = []
    for title, expr, label in PANELS:
        for series in api.query_range(expr, start, end, step_s):
            name = series.labels.get(label, "total")
            for t, v in series.points:
                when = dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
                rows.append({"panel": title, "series": name, "time": when, "value": v})
    return rows


def render_run_picture(api: PrometheusApi, start: float, end: float, out: Path, *, step_s: float = 1.0) -> int:
    """Write the PNG of the run between `start` and `end`; returns the number of points drawn."""
    rows = _rows(api, start, end, step_s)
    chart = (
        alt.Chart(alt.InlineData(values=rows))
        .mark_line(point=alt.OverlayMarkDef(size=12), interpolate="step-after")
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%H:%M:%S")),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="right")),
        )
        .properties(width=380, height=170)
        .facet(facet=alt.Facet("panel:N", title=None, sort=[p[0] for p in PANELS]), columns=2)
        .resolve_scale(y="independent", color="independent")
        .properties(title="REGSOSEK pipeline during an end-to-end run, as scraped by Prometheus")
    )
    png = vl_convert.vegalite_to_png(chart.to_dict(), scale=1.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    return len(rows)
