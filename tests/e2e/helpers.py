"""Shared by the e2e tests: waiting for the cluster, listing an InferenceService's children."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.support.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
OPERATOR_NAMESPACE = "memoserve-system"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:memoserve-operator"
ISVC = "inferenceservices.serving.memoserve.dev"

# Every kind the operator makes for an InferenceService, as kubectl names them.
CHILD_KINDS = (
    "serviceaccounts",
    "deployments.apps",
    "services",
    "poddisruptionbudgets.policy",
    "horizontalpodautoscalers.autoscaling",
    "backendconfigs.cloud.google.com",
    "managedcertificates.networking.gke.io",
    "ingresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io",
)

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def children(plane: ControlPlane, namespace: str, name: str) -> dict[str, list[dict[str, Any]]]:
    """The objects of each child kind labelled as belonging to InferenceService ``name``."""
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=memoserve-operator"
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in CHILD_KINDS:
        items = plane.get(kind, "-n", namespace, "-l", selector)["items"]
        found[kind] = items
    return found


def kubectl_type(obj: dict[str, Any]) -> str:
    """How kubectl names an object's type unambiguously: deployment.apps, service, ..."""
    group, _, _ = str(obj["apiVersion"]).rpartition("/")
    kind = str(obj["kind"]).lower()
    return f"{kind}.{group}" if group else kind


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in obj.get("status", {}).get("conditions", []):
        if item.get("type") == kind:
            return dict(item)
    return None


def is_ready(plane: ControlPlane, namespace: str, name: str) -> bool:
    isvc = plane.get(ISVC, name, "-n", namespace)
    ready = condition(isvc, "Ready")
    return ready is not None and ready["status"] == "True"


def apply_example(plane: ControlPlane, namespace: str, filename: str) -> str:
    """Apply manifests/examples/FILENAME in ``namespace``; returns the InferenceService's name."""
    out = plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / filename), "-o", "name")
    return out.stdout.strip().rsplit("/", 1)[-1]


def apply_isvc(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """Apply an InferenceService as a user would (kubectl apply, its own field manager)."""
    body = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def wait_ready(plane: ControlPlane, namespace: str, name: str, timeout: float = 90) -> None:
    """``kubectl wait --for=condition=Ready``, as a user or a CI pipeline waits."""
    waited = plane.kubectl(
        "wait", "--for=condition=Ready", f"--timeout={timeout:.0f}s", ISVC, name, "-n", namespace,
        check=False,
    )  # fmt: skip
    if waited.returncode != 0:
        status = plane.get(ISVC, name, "-n", namespace).get("status", {})
        raise AssertionError(f"{namespace}/{name} not Ready: {waited.stderr.strip()}\n{status}")
