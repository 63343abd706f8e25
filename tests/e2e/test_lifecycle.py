"""A spec change rolls the pods; deleting an InferenceService takes every child with it (the
garbage collector, through owner references) and its Memorystore instance per deletionPolicy."""

from __future__ import annotations

from tests.e2e.helpers import ISVC, apply_isvc, children, wait_for, wait_ready
from tests.memorystore.emulator_thread import EmulatorThread
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

SPEC = {"model": {"uri": "gs://my-models/iris/v1/", "format": "sklearn"}, "replicas": 2}


def _pod_names(
    plane: ControlPlane, namespace: str, name: str, count: int | None = None
) -> set[str] | None:
    """The Running pods' names; None when ``count`` is given and that many are not running."""
    pods = plane.get("pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}")
    names = {p["metadata"]["name"] for p in pods["items"] if p["status"].get("phase") == "Running"}
    return names if count is None or len(names) == count else None


def test_a_new_model_uri_rolls_the_pods(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, "iris", SPEC)
    wait_ready(control_plane, namespace, "iris")
    old = wait_for(lambda: _pod_names(control_plane, namespace, "iris", count=2), "2 pods")

    apply_isvc(
        control_plane,
        namespace,
        "iris",
        SPEC | {"model": SPEC["model"] | {"uri": "gs://my-models/iris/v2/"}},
    )

    def rolled() -> bool:
        pods = _pod_names(control_plane, namespace, "iris")
        return len(pods) == 2 and not pods & old

    wait_for(rolled, "two new pods replacing the old ones", timeout=90)
    env = control_plane.get("deployment", "iris", "-n", namespace)["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert {"name": "MEMOSERVE_MODEL_URI", "value": "gs://my-models/iris/v2/"} in env
    wait_ready(control_plane, namespace, "iris")


def test_deleting_the_service_collects_every_child(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    spec = {
        "model": {"uri": "gs://my-models/iris/v1/", "format": "sklearn"},
        "minReplicas": 1, "maxReplicas": 3,
        "cache": {"external": {"host": "redis.example.internal"}},
        "ingress": {"enabled": True, "className": "gce"},
    }  # fmt: skip
    apply_isvc(control_plane, namespace, "iris", spec)
    expected = {
        "serviceaccounts", "deployments.apps", "services", "horizontalpodautoscalers.autoscaling",
        "backendconfigs.cloud.google.com", "ingresses.networking.k8s.io",
    }  # fmt: skip
    wait_for(
        lambda: {k for k, v in children(control_plane, namespace, "iris").items() if v} >= expected,
        "the children",
    )
    wait_for(lambda: _pod_names(control_plane, namespace, "iris"), "a running pod")
    assert control_plane.get("secret", "iris-redis", "-n", namespace)["data"]

    control_plane.kubectl("delete", ISVC, "iris", "-n", namespace, "--timeout=60s")

    def all_gone() -> bool:
        left = {
            kind: items
            for kind, items in children(control_plane, namespace, "iris").items()
            if items
        }
        secret = control_plane.kubectl("get", "secret", "iris-redis", "-n", namespace, check=False)
        pods = control_plane.get("pods", "-n", namespace)["items"]
        return not left and secret.returncode != 0 and not pods

    wait_for(all_gone, "the garbage collector to delete every child and pod", timeout=60)


def _memorystore_spec(policy: str) -> dict[str, object]:
    return {
        "model": {"uri": "gs://my-models/churn/v7/", "format": "sklearn"},
        "cache": {"memorystore": {"tier": "BASIC", "memorySizeGb": 1, "deletionPolicy": policy}},
    }


def _instances(emulator: EmulatorThread) -> set[str]:
    return set(emulator.backend.slots)


def test_memorystore_instance_follows_the_deletion_policy(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    memorystore_emulator: EmulatorThread,
    namespace: str,
) -> None:
    before = _instances(memorystore_emulator)
    apply_isvc(control_plane, namespace, "churn", _memorystore_spec("Delete"))
    apply_isvc(control_plane, namespace, "kept", _memorystore_spec("Retain"))
    wait_ready(control_plane, namespace, "churn", timeout=120)
    wait_ready(control_plane, namespace, "kept", timeout=120)
    created = _instances(memorystore_emulator) - before
    assert len(created) == 2

    # The pods learn the endpoint from the Secret the operator wrote.
    secret = control_plane.get("secret", "churn-redis", "-n", namespace)
    assert {"host", "port"} <= set(secret["data"])
    status = control_plane.get(ISVC, "churn", "-n", namespace)["status"]
    assert status["cache"]["state"] == "READY"

    control_plane.kubectl("delete", ISVC, "churn", "kept", "-n", namespace, "--timeout=90s")
    remaining = _instances(memorystore_emulator) - before
    assert len(remaining) == 1, f"exactly the Retain instance must remain: {sorted(remaining)}"
    assert remaining < created
