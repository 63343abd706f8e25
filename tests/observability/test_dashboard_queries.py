"""Every panel of manifests/dashboards/memoserve.json, evaluated as Grafana would evaluate it
against a real Prometheus that scraped a loaded memoserve front and model tier, the operator and
kube-state-metrics (conftest.py): each query runs without error, returns series, and names only
metrics those targets export."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.observability.conftest import JOBS, NAMESPACE, SERVICE, Observation
from tests.observability.dashboard import (
    Query,
    expand,
    load,
    metric_names,
    queries,
    variable_value,
    variables,
)
from tests.observability.prometheus import SCRAPE_SECONDS

# Needs the e2e control plane (the operator, kube-state-metrics): `-m "not e2e"` skips it too.
pytestmark = pytest.mark.e2e

DASHBOARD = load()
QUERIES = list(queries(DASHBOARD))
STEP = 1.0  # the range queries' step: Grafana's $__interval for a short time range
# Set to a file name, the run also writes the table docs/observability.md shows.
TABLE_ENV = "MEMOSERVE_DASHBOARD_TABLE"


def grafana_expr(query: Query, services: list[str], step: float = STEP) -> str:
    chosen = {"namespace": [NAMESPACE], "service": services}
    values = {
        name: variable_value(variable, chosen[name])
        for name, variable in variables(DASHBOARD).items()
        if name in chosen
    }
    return expand(query.expr, values, scrape_seconds=SCRAPE_SECONDS, step=step)


def run(observed: Observation, expr: str) -> list[Any]:
    return observed.prometheus.query_range(expr, observed.start, time.time(), STEP)


@pytest.fixture(scope="module")
def exported(observed: Observation) -> set[str]:
    """Every metric name the scraped targets exposed."""
    names: set[str] = set()
    for job in JOBS:
        names |= observed.prometheus.scraped_metric_names(job)
    return names


@pytest.mark.parametrize("services", [[SERVICE], ["$__all"]], ids=["one-service", "all"])
@pytest.mark.parametrize("query", QUERIES, ids=[f"{q.panel}/{q.ref_id}" for q in QUERIES])
def test_panel_query_returns_series(
    observed: Observation, query: Query, services: list[str]
) -> None:
    expr = grafana_expr(query, services)
    assert run(observed, expr), f"{query.panel} ({query.ref_id}) returned no series: {expr}"


@pytest.mark.parametrize("query", QUERIES, ids=[f"{q.panel}/{q.ref_id}" for q in QUERIES])
def test_panel_query_names_only_exported_metrics(exported: set[str], query: Query) -> None:
    names = metric_names(query.expr)
    assert names, f"{query.expr} names no metric"
    missing = names - exported
    assert not missing, f"{query.panel}: no scraped target exports {sorted(missing)}"


def test_a_misspelt_metric_is_caught(exported: set[str]) -> None:
    """The check above can fail: a typo in a name is not among the exported names."""
    typo = 'sum(rate(memoserve_request_total{namespace="$namespace"}[$__rate_interval]))'
    assert metric_names(typo) == {"memoserve_request_total"}
    assert "memoserve_request_total" not in exported
    assert "memoserve_requests_total" in exported


def test_variables_offer_the_namespace_and_the_service(observed: Observation) -> None:
    templating = variables(DASHBOARD)
    namespace_query = templating["namespace"]["query"]["query"]
    service_query = templating["service"]["query"]["query"]
    assert namespace_query == "label_values(memoserve_requests_total, namespace)"
    assert observed.prometheus.label_values("namespace", "memoserve_requests_total") == [NAMESPACE]
    match = service_query.removeprefix("label_values(").rsplit(",", 1)[0]
    label = service_query.rsplit(",", 1)[1].strip(" )")
    match = expand(match, {"namespace": NAMESPACE}, scrape_seconds=SCRAPE_SECONDS, step=STEP)
    assert observed.prometheus.label_values(label, match) == [SERVICE]


def test_the_load_made_every_cache_result(observed: Observation) -> None:
    seen = {result for result, _ in observed.load.seen}
    assert {"hit", "miss", "bypass", "error"} <= seen, observed.load.seen
    # The front's shed misses: refused before any cache lookup, so counted as bypass.
    assert ("bypass", 503) in observed.load.seen, "no miss was shed"


def test_write_results_table(observed: Observation) -> None:
    """The panels' results as docs/observability.md shows them (written when TABLE_ENV is set):
    each query as a panel showing one point for the whole run (Grafana's $__interval is then the
    time range), so a rate is the run's average and a gauge its last value."""
    span = math.ceil(time.time() - observed.start)
    rows = ["| panel | query | series | value of each series over the whole run |"]
    rows.append("|---|---|---|---|")
    for query in QUERIES:
        result = observed.prometheus.query(grafana_expr(query, [SERVICE], step=span))
        values = ", ".join(f"{_legend(query.legend, s['metric'])}: {_value(s)}" for s in result)
        rows.append(f"| {query.panel} | {query.ref_id} | {len(result)} | {values} |")
        assert result, query
    target = os.environ.get(TABLE_ENV)
    if target:
        Path(target).write_text("\n".join(rows) + "\n")


def _legend(template: str, labels: dict[str, str]) -> str:
    text = template
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _value(series: dict[str, Any]) -> str:
    return f"{float(series['value'][1]):.3g}"
