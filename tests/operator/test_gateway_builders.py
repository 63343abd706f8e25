"""The Gateway API builders (pure): HTTPRoute, the service's own Gateway, GKE's HealthCheckPolicy
and GCPBackendPolicy, and what spec.gateway changes in the Service and the NetworkPolicy."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest

from memoserve_contract.pod_settings import GRPC_TLS_PORT, HTTP_PORT
from memoserve_operator.builders import build_all, child_names
from memoserve_operator.builders.gateway import build_gateway
from memoserve_operator.builders.gke_policies import (
    build_backend_policies,
    build_health_check_policies,
)
from memoserve_operator.builders.http_route import build_http_route
from memoserve_operator.builders.network_policy import build_network_policy
from memoserve_operator.builders.service import build_service
from memoserve_operator.builders.traffic import backends
from tests.operator.helpers import SETTINGS, make_isvc, validate_object

SHARED = {"parentRef": {"name": "shared", "namespace": "infra"}, "hostnames": ["a.example.com"]}
OWN = {"gatewayClassName": "gke-l7-regional-external-managed"}


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return [o["kind"] for o in objects]


def test_shared_gateway_is_a_route_and_two_policies_without_ingress_kinds() -> None:
    objects = build_all(make_isvc(gateway=SHARED), SETTINGS)
    assert [k for k in kinds(objects) if k not in ("ServiceAccount", "Deployment", "Service",
            "PodDisruptionBudget", "NetworkPolicy")] == [
        "HealthCheckPolicy", "GCPBackendPolicy", "HTTPRoute"
    ]  # fmt: skip
    service = next(o for o in objects if o["kind"] == "Service")
    # GKE's Gateway controller makes the NEGs itself; BackendConfig is the Ingress's.
    assert "annotations" not in service["metadata"]


def test_own_gateway_comes_before_the_route_that_attaches_to_it() -> None:
    found = kinds(build_all(make_isvc(gateway=OWN), SETTINGS))
    assert found.index("Gateway") == found.index("HTTPRoute") - 1
    assert found.index("HealthCheckPolicy") < found.index("Gateway")


def test_route_backends_are_the_traffic_backends_with_their_weights() -> None:
    isvc = make_isvc(gateway=SHARED)
    (rule,) = build_http_route(isvc)["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"kind": "Service", "name": b.service, "port": 80, "weight": b.weight}
        for b in backends(isvc)
    ]
    assert rule["backendRefs"][0]["name"] == "iris"
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_shared_parent_ref_names_only_what_was_given() -> None:
    route = build_http_route(make_isvc(gateway={"parentRef": {"name": "edge"}, "path": "/v2"}))
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}
    ]
    assert "hostnames" not in route["spec"]
    assert route["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/v2"
    sectioned = {"parentRef": {"name": "edge", "namespace": "infra", "sectionName": "https"}}
    (ref,) = build_http_route(make_isvc(gateway=sectioned))["spec"]["parentRefs"]
    assert (ref["namespace"], ref["sectionName"]) == ("infra", "https")


def test_own_gateway_route_attaches_to_it_by_name() -> None:
    (ref,) = build_http_route(make_isvc(gateway=OWN))["spec"]["parentRefs"]
    assert ref == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "iris"}


def test_grpc_goes_through_the_route_to_the_tls_port_over_http2() -> None:
    isvc = make_isvc(gateway=SHARED, grpc={"enabled": True})
    grpc, rest = build_http_route(isvc)["spec"]["rules"]
    assert {m["path"]["value"] for m in grpc["matches"]} == {
        "/inference.GRPCInferenceService",
        "/grpc.health.v1.Health",
        "/grpc.reflection.v1alpha.ServerReflection",
    }
    assert {ref["port"] for ref in grpc["backendRefs"]} == {GRPC_TLS_PORT}
    assert {ref["port"] for ref in rest["backendRefs"]} == {80}
    service = build_service(isvc)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc-tls"]["appProtocol"] == "HTTP2"  # what GKE's Gateway reads
    assert "annotations" not in service["metadata"]  # cloud.google.com/app-protocols: Ingress
    # The pods' TLS key comes from the operator (grpc_tls), as for the Ingress: none rendered.
    assert "Secret" not in kinds(build_all(isvc, SETTINGS))


def test_grpc_without_a_gateway_stays_in_cluster() -> None:
    (rule,) = build_http_route(make_isvc(gateway=SHARED))["spec"]["rules"]
    assert rule["backendRefs"][0]["port"] == 80


@pytest.mark.parametrize(
    ("tls", "listener_tls", "annotations"),
    [
        ({"secretName": "iris-tls"},
         {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "iris-tls"}]}, None),
        ({"preSharedCertificates": ["a", "b"]},
         {"mode": "Terminate", "options": {"networking.gke.io/pre-shared-certs": "a,b"}}, None),
        ({"certificateMap": "iris-map"}, None, {"networking.gke.io/certmap": "iris-map"}),
    ],
    ids=["secret", "pre-shared", "certificate-map"],
)  # fmt: skip
def test_own_gateway_https_from_each_certificate_source(
    tls: dict[str, Any], listener_tls: dict[str, Any] | None, annotations: dict[str, str] | None
) -> None:
    spec = {"gatewayClassName": "gke-l7-global-external-managed", "tls": tls}
    gateway = build_gateway(make_isvc(gateway=spec))
    http, https = gateway["spec"]["listeners"]
    assert http == {"name": "http", "protocol": "HTTP", "port": 80}
    assert (https["protocol"], https["port"], https.get("tls")) == ("HTTPS", 443, listener_tls)
    assert gateway["metadata"].get("annotations") == annotations
    validate_object(gateway)


def test_own_gateway_takes_the_named_address_and_class() -> None:
    gateway = build_gateway(make_isvc(gateway=OWN | {"addressName": "iris-ip"}))
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-regional-external-managed"
    assert gateway["spec"]["addresses"] == [{"type": "NamedAddress", "value": "iris-ip"}]
    assert gateway["spec"]["listeners"] == [{"name": "http", "protocol": "HTTP", "port": 80}]


def test_policies_check_readiness_and_drain_each_backend_service() -> None:
    isvc = make_isvc(gateway=SHARED, drainSeconds=20)
    (health,) = build_health_check_policies(isvc)
    (backend,) = build_backend_policies(isvc, SETTINGS)
    target = {"group": "", "kind": "Service", "name": "iris"}
    assert health["spec"]["targetRef"] == backend["spec"]["targetRef"] == target
    check = health["spec"]["default"]["config"]["httpHealthCheck"]
    assert (check["requestPath"], check["port"]) == ("/v2/health/ready", HTTP_PORT)
    assert backend["spec"]["default"] == {
        "timeoutSec": 60,
        "connectionDraining": {"drainingTimeoutSec": 20 + 30},
    }
    # Every backend's name, and the canary's even when there is none: pruned once it goes.
    assert child_names(isvc, "HealthCheckPolicy") == (
        *(b.service for b in backends(isvc)),
        "iris-canary",
    )


def test_network_policy_lets_the_load_balancer_in_for_a_gateway() -> None:
    def sources(**spec: Any) -> list[Any]:
        return build_network_policy(make_isvc(**spec), SETTINGS, None)["spec"]["ingress"][0]["from"]

    lb = [{"ipBlock": {"cidr": cidr}} for cidr in SETTINGS.lb_source_ranges]
    assert lb
    assert all(block in sources(gateway=SHARED) for block in lb)
    assert not any(block in sources() for block in lb)


def test_schema_check_refuses_an_unknown_route_field() -> None:
    route = build_http_route(make_isvc(gateway=SHARED))
    validate_object(route)
    route["spec"]["rules"][0]["backendRefs"][0]["weigth"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_object(route)
