"""The model tier's HPA behind the cache front, table-driven: which metrics for which model tier,
and the External metric's name and selector for each adapter (builders/hpa.py, model_tier.py)."""

from __future__ import annotations

from typing import Any

import pytest

from memoserve_operator.builders.model_tier import build_model_hpa, model_metrics
from memoserve_operator.settings import ExternalMetricsAdapter, OperatorSettings, SettingsError
from tests.operator.helpers import SETTINGS, make_isvc, validate_object

TRITON = {"image": "tritonserver:24.08", "port": 8000}
BUILTIN = {"uri": "gs://m/ranker.onnx", "format": "onnx"}
SERVER = {"uri": "gs://m/repo/", "server": TRITON}
STACKDRIVER_NAME = "prometheus.googleapis.com|memoserve_upstream_inflight_requests|gauge"
STACKDRIVER_SELECTOR = {
    "resource.labels.namespace": "ml",
    "metric.labels.memoserve_service": "iris",
}


def model_tier(model: dict[str, Any], autoscaling: dict[str, Any] | None) -> Any:
    spec: dict[str, Any] = {"model": model, "front": {"enabled": True}, "maxReplicas": 4}
    if autoscaling is not None:
        spec["autoscaling"] = autoscaling
    return make_isvc(**spec)


def external(name: str, selector: dict[str, str], per_pod: str) -> dict[str, Any]:
    return {
        "type": "External",
        "external": {
            "metric": {"name": name, "selector": {"matchLabels": selector}},
            "target": {"type": "AverageValue", "averageValue": per_pod},
        },
    }


def pods(per_pod: str) -> dict[str, Any]:
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": "memoserve_inflight_requests"},
            "target": {"type": "AverageValue", "averageValue": per_pod},
        },
    }


def cpu(utilization: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": utilization},
        },
    }


@pytest.mark.parametrize(
    ("model", "autoscaling", "metrics"),
    [
        # The built-in runtime: its own in-flight gauge, as before.
        (BUILTIN, None, [pods("16")]),
        (BUILTIN, {"targetInflightRequestsPerPod": 4}, [pods("4")]),
        (BUILTIN, {"targetCPUUtilization": 50}, [cpu(50), pods("16")]),
        # An external server without an in-flight target: CPU, as before.
        (SERVER, None, [cpu(80)]),
        (SERVER, {"targetCPUUtilization": 50}, [cpu(50)]),
        # With one: what the fronts have in flight to it, per model pod.
        (
            SERVER,
            {"targetInflightRequestsPerPod": 8},
            [external(STACKDRIVER_NAME, STACKDRIVER_SELECTOR, "8")],
        ),
        (
            SERVER,
            {"targetCPUUtilization": 60, "targetInflightRequestsPerPod": 8},
            [cpu(60), external(STACKDRIVER_NAME, STACKDRIVER_SELECTOR, "8")],
        ),
    ],
)
def test_model_tier_metrics(
    model: dict[str, Any], autoscaling: dict[str, Any] | None, metrics: list[dict[str, Any]]
) -> None:
    isvc = model_tier(model, autoscaling)
    assert model_metrics(isvc, SETTINGS) == metrics
    hpa = build_model_hpa(isvc, SETTINGS)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "iris-model"
    assert hpa["spec"]["metrics"] == metrics
    validate_object(hpa)


@pytest.mark.parametrize(
    ("settings", "name", "selector"),
    [
        ({}, STACKDRIVER_NAME, STACKDRIVER_SELECTOR),
        (
            {"cluster_name": "prod-eu"},
            STACKDRIVER_NAME,
            STACKDRIVER_SELECTOR | {"resource.labels.cluster": "prod-eu"},
        ),
        (
            {"external_metrics_adapter": "prometheus-adapter"},
            "memoserve_upstream_inflight_requests",
            {"namespace": "ml", "memoserve_service": "iris"},
        ),
        (
            {"external_metrics_adapter": "prometheus-adapter", "cluster_name": "prod-eu"},
            "memoserve_upstream_inflight_requests",
            {"namespace": "ml", "memoserve_service": "iris", "cluster": "prod-eu"},
        ),
        (
            {"upstream_inflight_metric_name": "ranker_upstream_load"},
            "ranker_upstream_load",
            STACKDRIVER_SELECTOR,
        ),
    ],
)
def test_external_metric_per_adapter(
    settings: dict[str, Any], name: str, selector: dict[str, str]
) -> None:
    chosen = OperatorSettings.model_validate(SETTINGS.model_dump() | settings)
    isvc = model_tier(SERVER, {"targetInflightRequestsPerPod": 8})
    assert model_metrics(isvc, chosen) == [external(name, selector, "8")]


def test_selector_names_the_service_not_its_model() -> None:
    """Two services of a namespace may serve the same spec.model.name (the metrics' `model`
    label): the selector picks one service's fronts by its own name."""
    isvc = model_tier(SERVER | {"name": "ranker"}, {"targetInflightRequestsPerPod": 8})
    (metric,) = model_metrics(isvc, SETTINGS)
    selector = metric["external"]["metric"]["selector"]["matchLabels"]
    assert "metric.labels.model" not in selector
    assert selector["metric.labels.memoserve_service"] == "iris"


def test_adapter_and_cluster_come_from_the_environment() -> None:
    environ = {
        "MEMOSERVE_OPERATOR_EXTERNAL_METRICS_ADAPTER": "prometheus-adapter",
        "MEMOSERVE_OPERATOR_UPSTREAM_INFLIGHT_METRIC_NAME": "upstream_load",
        "MEMOSERVE_OPERATOR_CLUSTER_NAME": "prod-eu",
    }
    settings = OperatorSettings.from_env(environ)
    assert settings.external_metrics_adapter is ExternalMetricsAdapter.PROMETHEUS_ADAPTER
    assert settings.upstream_inflight_metric_name == "upstream_load"
    assert settings.cluster_name == "prod-eu"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEMOSERVE_OPERATOR_EXTERNAL_METRICS_ADAPTER", "keda"),
        ("MEMOSERVE_OPERATOR_CLUSTER_NAME", "Prod_EU"),  # not a label value GKE would write
        ("MEMOSERVE_OPERATOR_UPSTREAM_INFLIGHT_METRIC_NAME", ""),
    ],
)
def test_bad_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        OperatorSettings.from_env({variable: value})
