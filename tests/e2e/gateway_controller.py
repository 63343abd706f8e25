"""A stand-in for GKE's Gateway controller, which a local control plane does not run: the tests
write what it would write on an HTTPRoute (``status.parents[]``: per Gateway, Accepted and
ResolvedRefs) and on a Gateway (``status.addresses``), through the status subresource as a
controller does, so that the operator reads them from the real API server."""

from __future__ import annotations

import json
from typing import Any

from tests.support.controlplane import ControlPlane

CONTROLLER = "networking.gke.io/gateway"
STAMP = "2026-01-01T00:00:00Z"


def _condition(type_: str, status: str, reason: str, message: str, generation: int) -> Any:
    return {
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": STAMP, "observedGeneration": generation,
    }  # fmt: skip


def write_route_status(
    plane: ControlPlane,
    namespace: str,
    name: str,
    parent: dict[str, str],
    *,
    accepted: tuple[str, str] = ("True", "Accepted"),
    message: str = "",
) -> None:
    """Say of HTTPRoute ``name`` what the Gateway ``parent`` concluded about it."""
    route = plane.get("httproutes.gateway.networking.k8s.io", name, "-n", namespace)
    generation = int(route["metadata"]["generation"])
    status = {
        "parents": [
            {
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", **parent},
                "controllerName": CONTROLLER,
                "conditions": [
                    _condition("Accepted", *accepted, message, generation),
                    _condition("ResolvedRefs", "True", "ResolvedRefs", "", generation),
                ],
            }
        ]
    }
    plane.kubectl(
        "patch", "httproutes.gateway.networking.k8s.io", name, "-n", namespace,
        "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip
