"""The HorizontalPodAutoscaler (autoscaling/v2), when maxReplicas > minReplicas."""

from __future__ import annotations

import copy

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import (
    AUTOSCALER,
    SERVICE_METRIC_LABEL,
    Object,
    object_meta,
)
from memoserve_operator.settings import ExternalMetricsAdapter, OperatorSettings

# A cache front's gauge: misses it has sent to the model tier or queued for it.
UPSTREAM_INFLIGHT = "memoserve_upstream_inflight_requests"

# Scale up fast (a queue of misses is latency users see), down slowly (a pod that goes away
# takes its warm model with it, and a new one downloads it again).
BEHAVIOR: Object = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    },
}


def metrics(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    targets = isvc.spec.autoscaling
    cpu = targets.target_cpu_utilization if targets else None
    inflight = targets.target_inflight_requests_per_pod if targets else None
    if cpu is None and inflight is None:
        cpu = settings.default_target_cpu_utilization
    found: list[Object] = []
    if cpu is not None:
        found.append(cpu_metric(cpu))
    if inflight is not None:
        found.append(inflight_metric(settings, inflight))
    return found


def inflight_metric(settings: OperatorSettings, per_pod: int) -> Object:
    """The Pods metric memoserve_inflight_requests (needs a custom-metrics adapter)."""
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": settings.inflight_metric_name},
            "target": {"type": "AverageValue", "averageValue": str(per_pod)},
        },
    }


def upstream_inflight_metric(
    isvc: InferenceService, settings: OperatorSettings, per_model_pod: int
) -> Object:
    """The External metric of a model tier whose server exports no load of its own: the sum of
    its front pods' memoserve_upstream_inflight_requests. An External AverageValue is that sum
    divided by the scaled Deployment's replicas, so the target is per model pod."""
    return {
        "type": "External",
        "external": {
            "metric": {
                "name": upstream_inflight_metric_name(settings),
                "selector": {"matchLabels": service_series(isvc, settings)},
            },
            "target": {"type": "AverageValue", "averageValue": str(per_model_pod)},
        },
    }


def upstream_inflight_metric_name(settings: OperatorSettings) -> str:
    """The setting, else the name the adapter gives the gauge (the Stackdriver adapter: Cloud
    Monitoring's metric type of a Managed Service for Prometheus gauge, "/" spelled "|")."""
    if settings.upstream_inflight_metric_name is not None:
        return settings.upstream_inflight_metric_name
    if settings.external_metrics_adapter is ExternalMetricsAdapter.STACKDRIVER:
        return f"prometheus.googleapis.com|{UPSTREAM_INFLIGHT}|gauge"
    return UPSTREAM_INFLIGHT


def service_series(isvc: InferenceService, settings: OperatorSettings) -> dict[str, str]:
    """The selector of one service's series: its namespace and its name (the label the
    PodMonitoring adds), and this cluster's when the settings name it. External metrics are not
    namespaced by the adapter (the Stackdriver adapter queries the whole project): the selector
    must say all of it."""
    resource, metric = "", ""
    if settings.external_metrics_adapter is ExternalMetricsAdapter.STACKDRIVER:
        resource, metric = "resource.labels.", "metric.labels."
    found = {
        f"{resource}namespace": isvc.namespace,
        f"{metric}{SERVICE_METRIC_LABEL}": isvc.name,
    }
    if settings.cluster_name is not None:
        found[f"{resource}cluster"] = settings.cluster_name
    return found


def build_hpa(isvc: InferenceService, settings: OperatorSettings) -> Object:
    assert isvc.spec.max_replicas is not None  # build_all calls this only when autoscaled
    return hpa(
        isvc,
        name=isvc.name,
        min_replicas=isvc.spec.min_replicas,
        max_replicas=isvc.spec.max_replicas,
        metrics=metrics(isvc, settings),
    )


def cpu_metric(utilization: int) -> Object:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": utilization},
        },
    }


def hpa(
    isvc: InferenceService,
    *,
    name: str,
    min_replicas: int,
    max_replicas: int,
    metrics: list[Object],
) -> Object:
    """An HPA of the Deployment ``name`` (of the same name)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(isvc, AUTOSCALER, name=name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": metrics,
            "behavior": copy.deepcopy(BEHAVIOR),  # callers may edit what they get
        },
    }
