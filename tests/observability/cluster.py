"""The cluster half of what the dashboard shows: the e2e control plane with the operator running
(its own /metrics), an InferenceService it scales, and kube-state-metrics (built from its Go
module, scripts/build-kube-state-metrics.sh) exporting the Deployments and HPAs."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memoserve_dev.ports import free_port, wait_for_port
from tests.support.controlplane import ROOT, ControlPlane, ControlPlaneError, die_with_parent
from tests.support.operator_process import OperatorProcess

BUILD_SCRIPT = ROOT / "scripts" / "build-kube-state-metrics.sh"
OPERATOR_NAMESPACE = "memoserve-system"

# A split service (a front before a model tier), each tier with its own HPA: the replicas panel
# has both tiers to show.
SPLIT_SERVICE: dict[str, Any] = {
    "model": {
        "uri": "gs://my-models/triton-repo/",
        "server": {"image": "nvcr.io/nvidia/tritonserver:24.08-py3", "port": 8000},
    },
    "front": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
    "autoscaling": {"targetInflightRequestsPerPod": 8},
    "minReplicas": 1,
    "maxReplicas": 4,
    "gpu": {"type": "nvidia-l4"},
    "cache": {"external": {"host": "redis.cache.svc.cluster.local"}},
}
# A namespace whose ResourceQuota allows no PodDisruptionBudget: the API server refuses the
# operator's, and the reconcile ends in apply_failed, an error the operator panel must show.
NO_PDB_QUOTA: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ResourceQuota",
    "metadata": {"name": "no-pdbs"},
    "spec": {"hard": {"count/poddisruptionbudgets.policy": "0"}},
}


def kube_state_metrics_binary() -> Path:
    """The cached binary; never builds here (``make test`` does: minutes, not a test's time)."""
    built = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        env=os.environ | {"MEMOSERVE_E2E_NO_BUILD": "1"},
        check=False,
    )
    if built.returncode != 0:
        raise ControlPlaneError(built.stderr.strip())
    return Path(built.stdout.strip().splitlines()[-1])


@dataclass
class KubeStateMetrics:
    """kube-state-metrics against the control plane, as the admin (it lists every namespace)."""

    plane: ControlPlane
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KubeStateMetrics:
        self.port = free_port()
        log = (self.workdir / "kube-state-metrics.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(kube_state_metrics_binary()),
                f"--kubeconfig={self.plane.kubeconfig}",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--telemetry-host=127.0.0.1",
                f"--telemetry-port={free_port()}",
                "--resources=deployments,horizontalpodautoscalers",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port, timeout=30)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def start_operator(plane: ControlPlane, workdir: Path) -> tuple[OperatorProcess, int]:
    """``memoserve operator`` as its ServiceAccount with its metrics port; (process, port)."""
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        plane.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "base" / name))
    port = free_port()
    kubeconfig = plane.service_account_kubeconfig(OPERATOR_NAMESPACE, "memoserve-operator")
    operator = OperatorProcess(
        kubeconfig,
        workdir / "operator.log",
        {
            "MEMOSERVE_OPERATOR_METRICS_PORT": str(port),
            "MEMOSERVE_OPERATOR_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
            "MEMOSERVE_OPERATOR_LEASE_DURATION_SECONDS": "3",
            "MEMOSERVE_OPERATOR_LEASE_RETRY_SECONDS": "0.5",
            "MEMOSERVE_OPERATOR_RECHECK_SECONDS": "5",
            "MEMOSERVE_OPERATOR_GCP_PROJECT": "observability-project",
            "MEMOSERVE_OPERATOR_GCP_REGION": "us-central1",
        },
    ).start()
    try:
        wait_for_port(port, timeout=60)
    except TimeoutError as exc:
        operator.stop()
        raise ControlPlaneError(f"the operator serves no metrics: {operator.log()}") from exc
    return operator, port


def apply_service(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> None:
    plane.kubectl("create", "namespace", namespace, check=False)
    body = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def apply_quota(plane: ControlPlane, namespace: str) -> None:
    plane.kubectl("create", "namespace", namespace, check=False)
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(NO_PDB_QUOTA))
