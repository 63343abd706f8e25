"""What a Grafana shows of manifests/dashboards/memoserve.json: its panels' queries, expanded as
Grafana expands them before they reach Prometheus, and the metric names each one reads.

Pure code: the tests run the expanded queries against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "manifests" / "dashboards" / "memoserve.json"


@dataclass(frozen=True)
class Query:
    panel: str
    ref_id: str
    expr: str
    legend: str


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    """Every target of every panel (rows hold no queries)."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield Query(panel["title"], target["refId"], target["expr"], target["legendFormat"])


def variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def rate_interval(scrape_seconds: float, step_seconds: float) -> float:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval), so a
    rate() always spans at least four scrapes (the data source's "scrape interval" setting)."""
    return max(step_seconds + scrape_seconds, 4 * scrape_seconds)


def variable_value(variable: Mapping[str, Any], chosen: Sequence[str]) -> str:
    """How Grafana's Prometheus data source writes a variable into a query: one value as it is
    (regex-escaped when the variable is multi-value or has All), several as ``(a|b)``, All as
    the variable's allValue."""
    if chosen == ["$__all"]:
        return str(variable["allValue"])
    if not (variable.get("multi") or variable.get("includeAll")):
        (value,) = chosen
        return value
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value) for value in chosen]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def expand(expr: str, values: Mapping[str, str], *, scrape_seconds: float, step: float) -> str:
    """``expr`` with $var / ${var} and Grafana's interval variables replaced; any variable left
    over is an error (Prometheus would refuse the query, or worse, match it literally)."""
    builtins = {
        "__rate_interval": f"{rate_interval(scrape_seconds, step):g}s",
        "__interval": f"{step:g}s",
    }
    every = {**builtins, **values}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in every:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return every[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


# PromQL words that are not metric names (aggregations and functions are followed by "(").
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "atan2", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: the identifiers left once strings, label
    matchers, ranges, grouping clauses and function calls are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: their contents are no names
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping labels
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function or aggregation, or a keyword
        if match.start() > 0 and text[match.start() - 1].isdigit():
            continue  # the unit of a number such as 1e3
        found.add(word)
    return found
