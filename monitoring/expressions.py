"""Every PromQL expression of the committed dashboards and alert rules, and the metric names they use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

MONITORING = Path(__file__).resolve().parent
DASHBOARDS_DIR = MONITORING / "grafana" / "dashboards"
RULES_DIR = MONITORING / "prometheus" / "rules"
#: PromQL words that look like identifiers but are functions, keywords or operators.
PROMQL_WORDS = frozenset(
    {
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "rate",
        "increase",
        "delta",
        "deriv",
        "histogram_quantile",
        "time",
        "absent",
        "label_replace",
        "by",
        "without",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "on",
        "bool",
        "offset",
        "vector",
    }
)


def load_yaml(path: Path) -> Any:
    """A YAML file as plain Python data (safe loader)."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def dashboard_expressions(folder: Path = DASHBOARDS_DIR) -> list[tuple[str, str]]:
    """(dashboard uid/panel title, expr) of every target of every dashboard JSON in `folder`."""
    found = []
    for path in sorted(folder.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{board['uid']}/{panel['title']}", target["expr"]))
    return found


def rule_expressions(folder: Path = RULES_DIR) -> list[tuple[str, str]]:
    """(alert or record name, expr) of every rule file in `folder`."""
    found = []
    for path in sorted(folder.glob("*.yml")):
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name series (strings, matchers, ranges, groupings removed)."""
    stripped = re.sub(r"\{[^}]*\}", "", re.sub(r'"[^"]*"', "", expr))
    stripped = re.sub(r"\b(by|without|ignoring|on|group_left|group_right)\s*\([^)]*\)", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", stripped)) - PROMQL_WORDS


def named_metrics() -> dict[str, str]:
    """Metric name -> one place (dashboard panel or rule) that uses it."""
    return {name: where for where, expr in dashboard_expressions() + rule_expressions() for name in metric_names(expr)}
