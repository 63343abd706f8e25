"""The HorizontalPodAutoscaler (autoscaling/v2), when maxReplicas > minReplicas."""

from __future__ import annotations

import copy

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import AUTOSCALER, Object, object_meta
from memoserve_operator.settings import OperatorSettings

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
