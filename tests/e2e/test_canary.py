"""A canary (spec.canary) on a real control plane: the API server takes every canary object as
the operator applies it (server-side apply), the stable Service never selects a canary pod,
Ready waits for the canary, and a promotion gives the stable Deployment the canary's pod
template and prunes the canary's objects (that the promoted pods then become ready is the
Deployment controller's business; the fake-API reconcile tests follow the status)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import ISVC, apply_isvc, condition, wait_for, wait_ready
from tests.e2e.test_gateway import test_every_rendered_object_is_admitted as admitted
from tests.operator.helpers import DATA
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

NAME = "churn"
V1 = {"uri": "gs://my-models/churn/v1/model.onnx", "format": "onnx", "version": "1"}
V2 = {"uri": "gs://my-models/churn/v2/model.onnx", "format": "onnx", "version": "2"}
CACHE = {"external": {"host": "redis.cache.svc.cluster.local"}}
CANARY = {"model": V2, "trafficPercent": 25, "minReplicas": 1, "maxReplicas": 2}
KINDS = (
    "deployments.apps",
    "services",
    "poddisruptionbudgets.policy",
    "networkpolicies.networking.k8s.io",
)
HPA = "horizontalpodautoscalers.autoscaling"
CHECKSUM = "serving.memoserve.dev/config-checksum"


def test_every_rendered_canary_object_is_admitted(
    control_plane: ControlPlane, namespace: str
) -> None:
    """The canary golden input's objects (the canary's Deployment, Service, PDB, HPA,
    NetworkPolicy and Gateway policies, the route weighting both Services) by server-side
    apply, as the gateway objects are checked."""
    admitted(control_plane, namespace, DATA / "input" / "canary.yaml")


def _names(plane: ControlPlane, namespace: str, kind: str) -> set[str]:
    items = plane.get(kind, "-n", namespace, "-l", f"app.kubernetes.io/instance={NAME}")["items"]
    return {item["metadata"]["name"] for item in items}


def _selected(plane: ControlPlane, namespace: str, selector: dict[str, str]) -> list[str]:
    """The components of the pods a selector picks."""
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    pods: list[dict[str, Any]] = plane.get("pods", "-n", namespace, "-l", labels)["items"]
    return sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods)


@pytest.mark.timeout(300)
def test_canary_added_then_promoted(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    # No HPA for the stable version: Ready does not wait for its metrics (the canary's HPA is
    # not a part of Ready, and the API server takes it all the same).
    spec = {"model": V1, "cache": CACHE}
    apply_isvc(control_plane, namespace, NAME, spec | {"canary": CANARY})
    both = {NAME, f"{NAME}-canary"}
    for kind in KINDS:
        wait_for(lambda k=kind: _names(control_plane, namespace, k) == both, f"both {kind}")
    assert _names(control_plane, namespace, HPA) == {f"{NAME}-canary"}
    wait_ready(control_plane, namespace, NAME)
    isvc = control_plane.get(ISVC, NAME, "-n", namespace)
    canary = condition(isvc, "CanaryReady")
    assert canary is not None
    assert canary["status"] == "True", canary
    assert isvc["status"]["canary"]["trafficPercent"] == 25
    assert isvc["status"]["canary"]["readyReplicas"] == 1

    # Each Service picks its own version's pods only.
    for service, component in ((NAME, "serving"), (f"{NAME}-canary", "canary")):
        selector = control_plane.get("service", service, "-n", namespace)["spec"]["selector"]
        assert _selected(control_plane, namespace, selector) == [component], service

    deployment = f"deployments.apps/{NAME}-canary"
    template = control_plane.get(deployment, "-n", namespace)["spec"]["template"]
    tried = template["metadata"]["annotations"][CHECKSUM]

    # Promotion: canary.model into spec.model, spec.canary removed.
    apply_isvc(control_plane, namespace, NAME, spec | {"model": V2})
    for kind in KINDS:
        wait_for(lambda k=kind: _names(control_plane, namespace, k) == {NAME}, f"one {kind}")
    assert _names(control_plane, namespace, HPA) == set()
    stable = control_plane.get(f"deployments.apps/{NAME}", "-n", namespace)["spec"]["template"]
    assert stable["metadata"]["annotations"][CHECKSUM] == tried

    def promoted() -> dict[str, Any] | None:
        found = control_plane.get(ISVC, NAME, "-n", namespace)
        status = found.get("status") or {}
        seen = status.get("observedGeneration") == found["metadata"]["generation"]
        return found if seen and "canary" not in status else None

    wait_for(promoted, "the status of the promoted spec")
