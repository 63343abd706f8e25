"""The Helm chart on the e2e control plane: `helm install` (helm built from its Go module) takes
the operator's objects over, its Deployment rolls out (kwok runs the pods), and the operator,
running as the chart's ServiceAccount with the chart's RBAC, reconciles a service to Ready.

The session's control plane already holds the operator's ServiceAccount and RBAC, applied with
kubectl from manifests/base (tests/e2e/conftest.py); the chart's default values render the same
objects (tests/helm/test_chart.py), so `--take-ownership` adopts them unchanged and the tests
that run after this one see the same permissions. The release is left in place: uninstalling it
would delete the RBAC the session's operator runs with.
"""

from __future__ import annotations

from pathlib import Path

from memoserve_operator.settings import OperatorSettings
from tests.e2e.helpers import apply_isvc, wait_ready
from tests.helm.helm_tool import CHART, NAMESPACE, RELEASE, helm, helm_binary
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

SPEC = {"model": {"uri": "gs://my-models/iris/sklearn/", "format": "sklearn"}}


def test_chart_installs_and_the_operator_reconciles(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    binary = helm_binary()
    kubeconfig = ["--kubeconfig", str(control_plane.kubeconfig)]
    done = helm(
        binary, "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--take-ownership", "--wait", "--timeout", "120s", *kubeconfig,
        home=tmp_path, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    status = helm(binary, "status", RELEASE, "--namespace", NAMESPACE, *kubeconfig, home=tmp_path)
    assert "STATUS: deployed" in status.stdout, status.stdout + status.stderr

    # The objects are the release's now, the Deployment rolled out.
    for kind, name in [
        ("clusterrole", "memoserve-operator"),
        ("clusterrolebinding", "memoserve-operator-secrets"),
        ("deployment", "memoserve-operator"),
    ]:
        obj = control_plane.get(kind, name, "-n", NAMESPACE)
        assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE, kind
    deployment = control_plane.get("deployment", "memoserve-operator", "-n", NAMESPACE)
    assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
    config = control_plane.get("configmap", "memoserve-operator-config", "-n", NAMESPACE)
    assert OperatorSettings.from_env(config["data"]).default_image == "memoserve:0.1.0"

    # The operator runs as the chart's ServiceAccount, under the chart's RBAC.
    assert operator.running(), operator.log()
    apply_isvc(control_plane, namespace, "iris", SPEC)
    wait_ready(control_plane, namespace, "iris")
