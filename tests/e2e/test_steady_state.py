"""Once converged, the operator only reads: no write for two resync periods (audit log)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.e2e.gateway_controller import write_route_status
from tests.e2e.helpers import OPERATOR_USER, apply_isvc, wait_for, wait_ready
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

QUIET_SECONDS = 45  # the e2e operator resyncs every 20 s (conftest.py): two full passes


def _writes(plane: ControlPlane) -> list[str]:
    """The operator's writes, but Lease renewals: leader election renews by design."""
    return [
        f"{e.verb} {e.resource}/{e.subresource} {e.namespace}/{e.name}"
        for e in plane.audit_events(OPERATOR_USER)
        if e.is_write and e.resource != "leases"
    ]


@pytest.mark.timeout(300)
def test_no_writes_in_steady_state(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    model = {"uri": "gs://my-models/iris/sklearn/", "format": "sklearn"}
    apply_isvc(control_plane, namespace, "plain", {"model": model})
    scaled = {"minReplicas": 1, "maxReplicas": 3, "cache": {"external": {"host": "redis.internal"}}}
    apply_isvc(control_plane, namespace, "scaled", {"model": model} | scaled)
    # Behind a shared Gateway, its route accepted (the test standing in for GKE's controller).
    gateway = {"parentRef": {"name": "shared", "namespace": "infra"}, "hostnames": ["r.example"]}
    apply_isvc(control_plane, namespace, "routed", {"model": model, "gateway": gateway})
    route = "httproutes.gateway.networking.k8s.io"
    wait_for(lambda: control_plane.get_or_none(route, "routed", "-n", namespace), "the route")
    write_route_status(control_plane, namespace, "routed", {"name": "shared", "namespace": "infra"})
    wait_ready(control_plane, namespace, "plain")
    wait_ready(control_plane, namespace, "scaled")
    wait_ready(control_plane, namespace, "routed")
    # Other tests' namespaces are still being torn down (each a write by kopf: finalizers).
    wait_for(
        lambda: (
            not [
                n
                for n in control_plane.get("namespaces")["items"]
                if n["status"]["phase"] == "Terminating"
            ]
        ),
        "other tests' namespaces to be gone",
        timeout=120,
    )
    # Settled: a few seconds without a write (status and conditions written once).
    settled = _writes(control_plane)
    for _ in range(12):
        time.sleep(5)
        if (now := _writes(control_plane)) == settled:
            break
        settled = now

    quiet_from = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(QUIET_SECONDS)
    assert _writes(control_plane)[len(settled) :] == []
    # It kept looking meanwhile: the resync timer reads the InferenceServices' children.
    reads = [
        e
        for e in control_plane.audit_events(OPERATOR_USER)
        if e.stamp > quiet_from and e.verb in ("get", "list") and e.namespace == namespace
    ]
    assert reads, "the operator read nothing while quiet: is it still running?"
