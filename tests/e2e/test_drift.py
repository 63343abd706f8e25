"""Drift: what someone deletes or edits by hand is put back; what the HPA owns is left alone."""

from __future__ import annotations

import json
import time

from tests.e2e.helpers import ISVC, apply_isvc, wait_for, wait_ready
from tests.support.controlplane import ControlPlane
from tests.support.metrics_api import ANNOTATION_PREFIX
from tests.support.operator_process import OperatorProcess

SPEC = {"model": {"uri": "gs://my-models/iris/sklearn/", "format": "sklearn"}}


def test_a_deleted_service_is_recreated(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, "iris", SPEC)
    wait_ready(control_plane, namespace, "iris")
    before = control_plane.get("service", "iris", "-n", namespace)["metadata"]["uid"]

    control_plane.kubectl("delete", "service", "iris", "-n", namespace)

    def recreated() -> bool:
        found = control_plane.kubectl(
            "get", "service", "iris", "-n", namespace, "-o", "json", check=False
        )
        return found.returncode == 0 and json.loads(found.stdout)["metadata"]["uid"] != before

    wait_for(recreated, "the Service to come back", timeout=30)


def test_a_hand_edited_image_is_put_back(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, "iris", SPEC)
    wait_ready(control_plane, namespace, "iris")
    image = control_plane.get("deployment", "iris", "-n", namespace)["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]

    control_plane.kubectl("set", "image", "deployment/iris", "server=evil:latest", "-n", namespace)

    def restored() -> bool:
        deployment = control_plane.get("deployment", "iris", "-n", namespace)
        return bool(deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image)

    wait_for(restored, f"the image to go back to {image}", timeout=30)


def test_replicas_the_hpa_sets_are_not_undone(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    autoscaled = SPEC | {"minReplicas": 1, "maxReplicas": 5}
    apply_isvc(control_plane, namespace, "iris", autoscaled)
    wait_ready(control_plane, namespace, "iris")

    # Load on the one pod (its request is 1 CPU; the target 80 %): the real HPA controller
    # reads it from the metrics API and scales to ceil(1 x 2.0 / 0.8) = 3.
    control_plane.kubectl(
        "annotate", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance=iris",
        f"{ANNOTATION_PREFIX}cpu=2",
    )  # fmt: skip
    wait_for(lambda: _ready_replicas(control_plane, namespace) == 3, "the HPA to scale to 3")

    # A spec change makes the operator apply the Deployment again; the HPA's 3 stays.
    apply_isvc(control_plane, namespace, "iris", autoscaled | {"maxReplicas": 6})
    wait_for(
        lambda: control_plane.get("hpa", "iris", "-n", namespace)["spec"]["maxReplicas"] == 6,
        "the HPA to follow the spec",
    )
    time.sleep(6)  # a full operator tick after the apply
    deployment = control_plane.get("deployment", "iris", "-n", namespace, "--show-managed-fields")
    assert deployment["spec"]["replicas"] == 3
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
    assert "memoserve-operator" in managers
    wait_for(
        lambda: (
            control_plane.get(ISVC, "iris", "-n", namespace)["status"].get("replicaSummary")
            == "3/3"
        ),
        "status.replicaSummary 3/3",
    )


def _ready_replicas(plane: ControlPlane, namespace: str) -> int:
    return int(plane.get("deployment", "iris", "-n", namespace)["status"].get("readyReplicas", 0))
