"""Charts a person can look at: match weights and m/u parameters, as offline HTML and PNG.

altair (which Splink draws with) and vl-convert are the `charts` extra, imported only when charts are
written: the services and the image run without them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from linkage.normalise.prepare import PREPARED_SCHEMA

CHARTS_EXTRA = "install the charts extra: pip install 'regsosek-linkage[charts]'"


def charts_available() -> bool:
    """Whether the `charts` extra (altair, vl-convert) is installed."""
    try:
        import altair  # noqa: F401
        import vl_convert  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _linker_for(model: dict[str, Any]) -> Any:
    # Charts only need the parameters; Splink still wants input tables, so give it empty ones.
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(duckdb.connect())
    empty = pa.Table.from_pylist([], schema=PREPARED_SCHEMA)
    tables = [db_api.register(empty, table_name="a"), db_api.register(empty, table_name="b")]
    return Linker(tables, model, log_level=logging.ERROR)


def write_charts(model: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write `match_weights.{html,png}` and `m_u_parameters.{html,png}`; returns the paths written."""
    import vl_convert

    linker = _linker_for(model)
    written: list[Path] = []
    charts = {
        "match_weights": linker.visualisations.match_weights_chart(),
        "m_u_parameters": linker.visualisations.m_u_parameters_chart(),
    }
    for name, chart in charts.items():
        html = out_dir / f"{name}.html"
        html.write_text(chart.to_html(inline=True), encoding="utf-8")
        png = out_dir / f"{name}.png"
        png.write_bytes(vl_convert.vegalite_to_png(chart.chart_dict, scale=1.5))
        written += [html, png]
    return written
