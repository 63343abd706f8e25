"""A split service (spec.front, docs/front.md) on a real control plane: the front and the model
tier each get their Deployment, Service, PDB and HPA; the model pods land on the GPU pool and
the front's do not; Ready comes only when both tiers are ready, and switching the split off
takes the model tier away again."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.helpers import ISVC, apply_isvc, condition, wait_for, wait_ready
from tests.support.controlplane import ControlPlane
from tests.support.metrics_api import ANNOTATION_PREFIX
from tests.support.operator_process import OperatorProcess

NAME = "ranker"
ONE_TIER = {
    "model": {"uri": "gs://my-models/resnet50/model.onnx", "format": "onnx"},
    "minReplicas": 1,
    "maxReplicas": 2,
    "gpu": {"type": "nvidia-l4"},
    "cache": {"external": {"host": "redis.cache.svc.cluster.local"}},
}
SPLIT = ONE_TIER | {
    "model": {
        "uri": "gs://my-models/triton-repo/",
        "server": {"image": "nvcr.io/nvidia/tritonserver:24.08-py3", "port": 8000},
    },
    "front": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
    # Triton exports no memoserve metric: the model tier scales on the fronts' in-flight misses.
    "autoscaling": {"targetInflightRequestsPerPod": 8},
    "maxReplicas": 4,
}


def _names(plane: ControlPlane, namespace: str, kind: str) -> set[str]:
    selector = f"app.kubernetes.io/instance={NAME}"
    items = plane.get(kind, "-n", namespace, "-l", selector)["items"]
    return {item["metadata"]["name"] for item in items}


def _pods(plane: ControlPlane, namespace: str, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component={component}"
    items: list[dict[str, Any]] = plane.get("pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in items if p["status"].get("phase") == "Running"]


# Two tiers, two HPAs and their scaling through the metrics API: ~60 s alone, ~120 s (the
# default timeout) on a loaded 2-vCPU machine.
@pytest.mark.timeout(300)
def test_split_service_converges_with_both_tiers(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, NAME, SPLIT)
    both = {NAME, f"{NAME}-model"}
    for kind in (
        "deployments.apps",
        "services",
        "poddisruptionbudgets.policy",
        "horizontalpodautoscalers.autoscaling",
        "networkpolicies.networking.k8s.io",
    ):
        wait_for(lambda k=kind: _names(control_plane, namespace, k) == both, f"both {kind}")

    # The API server took the model tier's External metric as the operator built it.
    hpa = control_plane.get(
        "horizontalpodautoscalers.autoscaling", f"{NAME}-model", "-n", namespace
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {
        "resource.labels.namespace": namespace,
        "metric.labels.memoserve_service": NAME,
    }
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "8"}

    wait_ready(control_plane, namespace, NAME)
    isvc = control_plane.get(ISVC, NAME, "-n", namespace)
    serving = condition(isvc, "ServingReady")
    assert serving is not None
    assert "front: 1/1 replicas ready" in serving["message"]
    assert "model tier: 1/1 replicas ready" in serving["message"]
    model = condition(isvc, "ModelReady")
    assert model is not None
    assert model["message"] == "model tier: loaded by 1/1 pods"
    assert isvc["status"]["replicaSummary"] == "1/1 front, 1/1 model"

    # The model tier on the L4 pool with its GPU; the front on CPU nodes, without one.
    for pod in _pods(control_plane, namespace, "model"):
        node = control_plane.get("node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    fronts = _pods(control_plane, namespace, "serving")
    assert fronts
    for pod in fronts:
        node = control_plane.get("node", pod["spec"]["nodeName"])
        assert "cloud.google.com/gke-accelerator" not in node["metadata"]["labels"]
        assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"].get("limits", {})
    upstream = {e["name"]: e.get("value") for e in fronts[0]["spec"]["containers"][0]["env"]}[
        "MEMOSERVE_UPSTREAM_URL"
    ]
    assert upstream == f"http://{NAME}-model.{namespace}.svc:8000"

    # 20 misses in flight at the front, 8 per model pod: ceil(20 / 8) = 3 model pods, and it
    # stays there (an External AverageValue is divided by the model pods; a Value would not be).
    control_plane.kubectl(
        "annotate", "pods", "-n", namespace, "-l",
        f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=serving",
        f"{ANNOTATION_PREFIX}memoserve_upstream_inflight_requests=20",
    )  # fmt: skip
    three = "the model tier to scale to 3 on the fronts' in-flight misses"
    wait_for(lambda: len(_pods(control_plane, namespace, "model")) == 3, three)
    time.sleep(8)  # more than one HPA sync (5 s here)
    assert len(_pods(control_plane, namespace, "model")) == 3

    # The model tier going unready is the service going unready, and says which tier.
    control_plane.kubectl("scale", "deployment", f"{NAME}-model", "-n", namespace, "--replicas=0")

    def model_tier_down() -> dict[str, Any] | None:
        found = condition(control_plane.get(ISVC, NAME, "-n", namespace), "Ready")
        return found if found and found["status"] == "False" else None

    ready = wait_for(model_tier_down, "Ready=False once the model tier has no pods")
    assert "model tier" in ready["message"]

    # Switching the split off: NAME is one tier again, NAME-model is gone.
    apply_isvc(control_plane, namespace, NAME, ONE_TIER)
    for kind in ("deployments.apps", "services", "horizontalpodautoscalers.autoscaling"):
        wait_for(lambda k=kind: _names(control_plane, namespace, k) == {NAME}, f"one {kind}")
    wait_ready(control_plane, namespace, NAME)
    deployment = control_plane.get("deployment", NAME, "-n", namespace)
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MEMOSERVE_UPSTREAM_URL" not in env  # the front's, removed by the apply
    assert "MEMOSERVE_MODEL_URI" in env
