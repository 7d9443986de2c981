"""Small builders shared by the dashboards: one Prometheus datasource, panels with their queries."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.models.common import BarGaugeDisplayMode, VizOrientation
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

#: The datasource uid provisioned in monitoring/grafana/provisioning/datasources/prometheus.yml.
DATASOURCE_UID = "regsosek-prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)


def query(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    """One PromQL target."""
    target = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    if instant:
        target = target.instant().format(PromQueryFormat.TABLE)
    return target


def series(title: str, unit: str, *targets: tuple[str, str], description: str = "") -> timeseries.Panel:
    """A time-series panel with one line per (expr, legend) target."""
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(12)
    if description:
        panel = panel.description(description)
    for i, (expr, legend) in enumerate(targets):
        panel = panel.with_target(query(expr, legend, ref=chr(ord("A") + i)))
    return panel


def single(title: str, unit: str, expr: str, *, description: str = "", decimals: int = 0) -> stat.Panel:
    """A stat panel showing the last value of one expression."""
    panel = (
        stat.Panel()
        .title(title)
        .unit(unit)
        .decimals(decimals)
        .datasource(DATASOURCE)
        .height(4)
        .span(6)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr))
    )
    return panel.description(description) if description else panel


def bars(title: str, unit: str, expr: str, legend: str, *, description: str = "") -> bargauge.Panel:
    """A horizontal bar gauge, one bar per series (e.g. per district)."""
    panel = (
        bargauge.Panel()
        .title(title)
        .unit(unit)
        .min(0)
        .datasource(DATASOURCE)
        .height(10)
        .span(12)
        .orientation(VizOrientation.HORIZONTAL)
        .display_mode(BarGaugeDisplayMode.GRADIENT)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr, legend))
    )
    if unit == "percentunit":
        panel = panel.max(1)
    return panel.description(description) if description else panel


def grid(title: str, *targets: tuple[str, str], description: str = "") -> table.Panel:
    """A table of instant queries (one column per target, joined by labels)."""
    panel = table.Panel().title(title).datasource(DATASOURCE).height(10).span(24)
    if description:
        panel = panel.description(description)
    for i, (expr, legend) in enumerate(targets):
        panel = panel.with_target(query(expr, legend, ref=chr(ord("A") + i), instant=True))
    return panel
