"""The cluster half of what the dashboard shows: the e2e control plane with the operator running
(its own /metrics), an InferenceService it scales, and kube-state-metrics (built from its Go
module, scripts/build-kube-state-metrics.sh) exporting the Deployments and HPAs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from memoserve_dev.ports import free_port, wait_for_port
from tests.support.controlplane import (
    ROOT,
    ControlPlane,
    ControlPlaneError,
    control_plane_binaries,
    dies_with_parent,
)
from tests.support.operator_process import OperatorProcess

BUILD_SCRIPT = ROOT / "scripts" / "build-kube-state-metrics.sh"
OPERATOR_NAMESPACE = "memoserve-system"
QUOTA_NAMESPACE = "quota-full"  # see NO_PDB_QUOTA

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
# A ResourceQuota that allows no PodDisruptionBudget: the API server refuses the operator's, and
# a reconcile in its namespace ends in apply_failed, an error the operator panel must show.
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


class Cluster:
    """The control plane, the operator (metrics on ``operator_port``) with the services applied,
    and kube-state-metrics (on ``ksm_port``). The ports are chosen up front, so a Prometheus can
    be told its targets while :meth:`start` runs (on another thread: it takes ~15 s)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.operator_port = free_port()
        self.ksm_port = free_port()
        self.plane: ControlPlane | None = None
        self.operator: OperatorProcess | None = None
        self.ksm: subprocess.Popen[bytes] | None = None

    def start(self, services: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Start it all and apply ``services`` ((namespace, name) -> spec)."""
        self.plane = ControlPlane(self.workdir / "control-plane", control_plane_binaries(False))
        self.plane.start()
        self.operator = self._start_operator(self.plane)
        apply_quota(self.plane, QUOTA_NAMESPACE)
        for (namespace, name), spec in services.items():
            apply_service(self.plane, namespace, name, spec)
        self.ksm = self._start_kube_state_metrics(self.plane)

    def stop(self) -> None:
        if self.ksm is not None and self.ksm.poll() is None:
            self.ksm.terminate()
            self.ksm.wait(timeout=15)
        if self.operator is not None:
            self.operator.kill()  # a throwaway cluster: nothing to hand over
        if self.plane is not None:
            self.plane.stop()

    def _start_operator(self, plane: ControlPlane) -> OperatorProcess:
        """``memoserve operator`` as its ServiceAccount, with its metrics port."""
        for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
            plane.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "base" / name))
        kubeconfig = plane.service_account_kubeconfig(OPERATOR_NAMESPACE, "memoserve-operator")
        operator = OperatorProcess(
            kubeconfig,
            self.workdir / "operator.log",
            {
                "MEMOSERVE_OPERATOR_METRICS_PORT": str(self.operator_port),
                "MEMOSERVE_OPERATOR_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
                "MEMOSERVE_OPERATOR_LEASE_DURATION_SECONDS": "3",
                "MEMOSERVE_OPERATOR_LEASE_RETRY_SECONDS": "0.5",
                "MEMOSERVE_OPERATOR_RECHECK_SECONDS": "5",
                "MEMOSERVE_OPERATOR_GCP_PROJECT": "observability-project",
                "MEMOSERVE_OPERATOR_GCP_REGION": "us-central1",
            },
        ).start()
        try:
            wait_for_port(self.operator_port, timeout=60)
        except TimeoutError as exc:
            operator.kill()
            raise ControlPlaneError(f"the operator serves no metrics: {operator.log()}") from exc
        return operator

    def _start_kube_state_metrics(self, plane: ControlPlane) -> subprocess.Popen[bytes]:
        """kube-state-metrics as the admin (it lists every namespace)."""
        log = (self.workdir / "kube-state-metrics.log").open("ab")
        process = subprocess.Popen(
            dies_with_parent(
                [
                    str(kube_state_metrics_binary()),
                    f"--kubeconfig={plane.kubeconfig}",
                    "--host=127.0.0.1",
                    f"--port={self.ksm_port}",
                    "--telemetry-host=127.0.0.1",
                    f"--telemetry-port={free_port()}",
                    "--resources=deployments,horizontalpodautoscalers",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.ksm_port, timeout=30)
        return process


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
