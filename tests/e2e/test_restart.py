"""An operator killed in the middle of a reconcile comes back and converges: no duplicates."""

from __future__ import annotations

from tests.e2e.helpers import apply_isvc, children, wait_for, wait_ready
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

SPEC = {
    "model": {"uri": "gs://my-models/iris/sklearn/", "format": "sklearn"},
    "minReplicas": 2, "maxReplicas": 4,
    "cache": {"external": {"host": "redis.example.internal"}},
}  # fmt: skip


def test_killed_mid_reconcile_converges_without_duplicates(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, "iris", SPEC)
    # The first child in apply order is the ServiceAccount: kill as soon as it exists, before
    # the Deployment, the Service or the status were written.
    wait_for(
        lambda: children(control_plane, namespace, "iris")["serviceaccounts"],
        "the first child",
        timeout=30,
    )
    operator.kill()
    operator.start()

    wait_ready(control_plane, namespace, "iris")
    found = children(control_plane, namespace, "iris")
    for kind in ("serviceaccounts", "deployments.apps", "services", "poddisruptionbudgets.policy",
                 "horizontalpodautoscalers.autoscaling"):  # fmt: skip
        assert len(found[kind]) == 1, kind
    replica_sets = control_plane.get("replicasets", "-n", namespace)["items"]
    assert len(replica_sets) == 1, "one pod template: the restart changed nothing it applied"
    pods = control_plane.get("pods", "-n", namespace)["items"]
    assert len(pods) == 2
