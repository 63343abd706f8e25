"""spec.gateway on a real API server: every object the operator renders for it is admitted by
the Gateway API's and GKE's own CRDs (schemas and CEL rules), the route's status (written by the
test, standing in for GKE's Gateway controller) becomes the service's IngressReady and URL, and
a service moved from the Ingress to a Gateway and back keeps only what it needs, its Service's
load balancer annotations included (server-side apply removes what the operator stopped
setting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memoserve_operator.builders import build_all
from memoserve_operator.render import parse
from tests.e2e.gateway_controller import write_route_status
from tests.e2e.helpers import ISVC, apply_isvc, condition, kubectl_type, wait_for
from tests.operator.helpers import GOLDEN_INPUTS, SETTINGS, load
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

MODEL = {"uri": "gs://my-models/iris/v3/", "format": "sklearn"}
SHARED = {"parentRef": {"name": "shared", "namespace": "infra"}, "hostnames": ["iris.example.com"]}
OWN = {"gatewayClassName": "gke-l7-global-external-managed"}
GATEWAY_TYPES = (
    "healthcheckpolicies.networking.gke.io",
    "gcpbackendpolicies.networking.gke.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
)
INGRESS_TYPES = ("backendconfigs.cloud.google.com", "ingresses.networking.k8s.io")
GATEWAY_INPUTS = [p for p in GOLDEN_INPUTS if p.stem.startswith("gateway-")]


@pytest.mark.parametrize("path", GATEWAY_INPUTS, ids=lambda p: p.stem)
def test_every_rendered_object_is_admitted(
    control_plane: ControlPlane, namespace: str, path: Path
) -> None:
    objects = build_all(parse(load(path)), SETTINGS)
    assert {"HTTPRoute", "HealthCheckPolicy", "GCPBackendPolicy"} <= {o["kind"] for o in objects}
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
        obj["metadata"].pop("ownerReferences", None)  # no such owner in this namespace
    documents = "\n".join(json.dumps(obj) for obj in objects)
    applied = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "-o", "name", "-f", "-", stdin=documents
    )
    assert len(applied.stdout.split()) == len(objects)


def test_the_api_server_refuses_what_the_crds_refuse(
    control_plane: ControlPlane, namespace: str
) -> None:
    """The admission check can fail: a route with a backend weight past the schema's bound."""
    (route,) = [
        o for o in build_all(parse(load(GATEWAY_INPUTS[0])), SETTINGS) if o["kind"] == "HTTPRoute"
    ]
    route["metadata"] = {"name": "bad", "namespace": namespace}
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    refused = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(route), check=False
    )
    assert refused.returncode != 0
    assert "weight" in refused.stderr


def _present(plane: ControlPlane, namespace: str, name: str, types: tuple[str, ...]) -> set[str]:
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=memoserve-operator"
    return {t for t in types if plane.get(t, "-n", namespace, "-l", selector)["items"]}


def _ingress_ready(plane: ControlPlane, namespace: str) -> dict[str, Any] | None:
    return condition(plane.get(ISVC, "iris", "-n", namespace), "IngressReady")


def _reason(plane: ControlPlane, namespace: str, reason: str) -> dict[str, Any] | None:
    found = _ingress_ready(plane, namespace)
    return found if found is not None and found["reason"] == reason else None


def _service_annotations(plane: ControlPlane, namespace: str) -> set[str]:
    service = plane.get("service", "iris", "-n", namespace)
    return set(service["metadata"].get("annotations") or {})


@pytest.mark.timeout(240)
def test_route_status_flows_into_the_service_and_switching_prunes(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    plane = control_plane
    apply_isvc(plane, namespace, "iris", {"model": MODEL, "gateway": SHARED})
    wait_for(lambda: _present(plane, namespace, "iris", GATEWAY_TYPES) >= set(GATEWAY_TYPES) -
             {"gateways.gateway.networking.k8s.io"}, "the route and its policies")  # fmt: skip
    assert _reason(plane, namespace, "RoutePending")

    # The shared Gateway refuses the route (its listeners allow no routes from here) ...
    parent = {"name": "shared", "namespace": "infra"}
    refusal = "no listener allows routes from namespace " + namespace
    write_route_status(
        plane, namespace, "iris", parent, accepted=("False", "NotAllowedByListeners"),
        message=refusal,
    )  # fmt: skip
    refused = wait_for(lambda: _reason(plane, namespace, "RouteAcceptanceFailed"), "the refusal")
    assert refused["status"] == "False"
    assert refusal in refused["message"]
    ready = condition(plane.get(ISVC, "iris", "-n", namespace), "Ready")
    assert ready is not None
    assert ready["status"] == "False"

    # ... then accepts it: the service is reachable at its host name.
    write_route_status(plane, namespace, "iris", parent)
    wait_for(lambda: _reason(plane, namespace, "RouteAccepted"), "the route accepted")
    isvc = plane.get(ISVC, "iris", "-n", namespace)
    assert isvc["status"]["url"] == "http://iris.example.com/"
    printed = plane.kubectl("get", ISVC, "iris", "-n", namespace).stdout
    assert "http://iris.example.com/" in printed  # the URL column

    # To the Ingress: the route and policies go, the Service gets its NEG annotations.
    apply_isvc(plane, namespace, "iris", {"model": MODEL, "ingress": {"enabled": True}})
    wait_for(
        lambda: (
            not _present(plane, namespace, "iris", GATEWAY_TYPES)
            and _present(plane, namespace, "iris", INGRESS_TYPES) == set(INGRESS_TYPES)
        ),
        "the Gateway kinds pruned, the Ingress kinds made",
    )
    assert {"cloud.google.com/neg", "cloud.google.com/backend-config"} <= _service_annotations(
        plane, namespace
    )

    # Back to a Gateway of its own: the Ingress kinds go, and so do the Service's annotations.
    apply_isvc(plane, namespace, "iris", {"model": MODEL, "gateway": OWN})
    wait_for(
        lambda: (
            not _present(plane, namespace, "iris", INGRESS_TYPES)
            and _present(plane, namespace, "iris", GATEWAY_TYPES) == set(GATEWAY_TYPES)
        ),
        "the Ingress kinds pruned, the Gateway kinds made",
    )
    wait_for(
        lambda: (
            not {"cloud.google.com/neg", "cloud.google.com/backend-config"}
            & _service_annotations(plane, namespace)
        ),
        "the Service's NEG and BackendConfig annotations removed",
    )
    gateway = plane.get("gateways.gateway.networking.k8s.io", "iris", "-n", namespace)
    assert kubectl_type(gateway) == "gateway.gateway.networking.k8s.io"
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
