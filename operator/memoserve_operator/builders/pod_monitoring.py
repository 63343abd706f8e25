"""A PodMonitoring (monitoring.googleapis.com/v1): Managed Service for Prometheus scrapes the
serving pods' /metrics, which also feeds the HPAs' in-flight-requests metrics. Every series
carries the service's name (SERVICE_METRIC_LABEL); Managed Service for Prometheus adds the
namespace (and the cluster) itself."""

from __future__ import annotations

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import (
    HTTP_PORT_NAME,
    MONITORING,
    SERVICE_METRIC_LABEL,
    Object,
    object_meta,
    selector_labels,
)


def build_pod_monitoring(isvc: InferenceService) -> Object:
    """The serving pods; for a split service the model tier's as well (its HPA's metric), with
    a canary the canary's (its HPA's metric too)."""
    match = selector_labels(isvc)
    if isvc.spec.split or isvc.spec.canary is not None:
        match = {k: v for k, v in match.items() if k != "app.kubernetes.io/component"}
    return {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "PodMonitoring",
        "metadata": object_meta(isvc, MONITORING),
        "spec": {
            "selector": {"matchLabels": match},
            # 15 s: the HPA reads the metric; a slower scrape would make it react late.
            "endpoints": [{"port": HTTP_PORT_NAME, "path": "/metrics", "interval": "15s"}],
            # What an External metric selects one service's series by (builders/hpa.py).
            "targetLabels": {
                "fromPod": [{"from": "app.kubernetes.io/instance", "to": SERVICE_METRIC_LABEL}]
            },
        },
    }
