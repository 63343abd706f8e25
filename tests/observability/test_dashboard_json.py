"""manifests/dashboards: the dashboard JSON's shape, the ConfigMap kustomize builds from it, and
the Grafana expansion the query tests rely on (no Prometheus needed here)."""

from __future__ import annotations

import json
import subprocess
from itertools import combinations
from typing import Any

import pytest
import yaml

from tests.observability.dashboard import (
    DASHBOARD,
    expand,
    load,
    metric_names,
    queries,
    rate_interval,
    variable_value,
    variables,
)
from tests.support.controlplane import control_plane_binaries

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The operator's series are the operator's own (its namespace, no service label): its panels
# alone are not filtered by the variables.
CLUSTER_WIDE = {"memoserve_operator_reconciles_total"}
# What issue 24 asks the dashboard to show, by the metric that shows it.
SHOWN = {
    "memoserve_requests_total",  # hit ratio per service, requests by cache result
    "memoserve_request_duration_seconds_bucket",  # latency percentiles by cache result
    "memoserve_cache_errors_total",  # Redis errors, and the breaker (breaker_open)
    "memoserve_cache_breaker_open",  # the breaker's state per Redis node
    "memoserve_singleflight_joins_total",
    "memoserve_batch_size_bucket",
    "memoserve_shed_total",  # the front
    "memoserve_upstream_inflight_requests",  # the front
    "kube_deployment_status_replicas_available",  # replicas of each tier ...
    "kube_horizontalpodautoscaler_spec_min_replicas",  # ... against the HPA's bounds
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "memoserve_operator_reconciles_total",  # the operator's reconcile errors
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load()


def test_every_panel_shows_one_thing_in_its_own_place(dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    for a, b in combinations(panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a['title']} overlaps {b['title']}"


def test_every_query_reads_the_chosen_data_source(dashboard: dict[str, Any]) -> None:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["description"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_queries_select_the_namespace_and_service_variables(dashboard: dict[str, Any]) -> None:
    for query in queries(dashboard):
        if metric_names(query.expr) <= CLUSTER_WIDE:
            continue
        assert 'namespace="$namespace"' in query.expr, query
        assert "$service" in query.expr, query


def test_the_dashboard_shows_what_the_issue_asks(dashboard: dict[str, Any]) -> None:
    named = set().union(*(metric_names(q.expr) for q in queries(dashboard)))
    assert named >= SHOWN, SHOWN - named


def test_variables(dashboard: dict[str, Any]) -> None:
    templating = variables(dashboard)
    assert set(templating) == {"datasource", "namespace", "service"}
    assert templating["datasource"]["query"] == "prometheus"
    assert "memoserve_service)" in templating["service"]["query"]["query"]
    assert templating["service"]["allValue"] == ".+"


def test_kustomize_builds_the_sidecar_configmap() -> None:
    # kubectl from the e2e control plane's build (make test builds it), as in test_manifests.
    kubectl = control_plane_binaries(build=False) / "kubectl"
    printed = subprocess.run(
        [str(kubectl), "kustomize", str(DASHBOARD.parent)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (configmap,) = [o for o in yaml.safe_load_all(printed) if o]
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "memoserve-dashboard"  # no hash suffix
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["memoserve.json"]) == load()


def test_rate_interval_spans_four_scrapes() -> None:
    assert rate_interval(15, 15) == 60  # Grafana's default scrape interval, a 15 s step
    assert rate_interval(1, 30) == 31


def test_expand_substitutes_as_grafana_does() -> None:
    expr = 'rate(x{namespace="$namespace", s=~"${service}"}[$__rate_interval])'
    got = expand(expr, {"namespace": "shop", "service": "a"}, scrape_seconds=15, step=15)
    assert got == 'rate(x{namespace="shop", s=~"a"}[60s])'
    with pytest.raises(KeyError, match="cluster"):
        expand('x{c="$cluster"}', {}, scrape_seconds=15, step=15)


def test_variable_values_are_formatted_for_a_regex() -> None:
    multi = {"multi": True, "includeAll": True, "allValue": ".+"}
    assert variable_value(multi, ["a"]) == "a"
    assert variable_value(multi, ["a", "b.c"]) == r"(a|b\\.c)"
    assert variable_value(multi, ["$__all"]) == ".+"
    assert variable_value({"multi": False}, ["shop"]) == "shop"


def test_metric_names_are_what_a_query_selects() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (cache, le) (rate(memoserve_request_duration_seconds_"
        'bucket{cache="hit", code=~"5.."}[4s]))) / on (pod) group_left up offset 1m > 1e3'
    )
    assert metric_names(expr) == {"memoserve_request_duration_seconds_bucket", "up"}
    assert metric_names("sum(rate(a_total[1m])) and b or c unless d") == {"a_total", "b", "c", "d"}
