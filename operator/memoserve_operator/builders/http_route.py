"""The HTTPRoute (gateway.networking.k8s.io/v1) that sends a Gateway's requests to the service.

Its parent is the Gateway named in spec.gateway.parentRef, or the service's own Gateway
(builders/gateway.py). Its backends, and each one's weight, are ``traffic.backends``: the one
place that says which Services share the service's traffic.

gRPC goes through the same HTTPRoute, not a GRPCRoute (GKE's Gateway controller serves
HTTPRoutes; docs/gke.md): a gRPC call is ``POST /<service>/<method>``, so path matches on the
gRPC services send it to the Service's TLS gRPC port, whose appProtocol HTTP2 makes the load
balancer speak HTTP/2 to the pods, exactly as the Ingress does.
"""

from __future__ import annotations

from memoserve_contract.pod_settings import GRPC_TLS_PORT
from memoserve_contract.resource.gateway import GatewaySpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.ingress import GRPC_SERVICES
from memoserve_operator.builders.meta import GATEWAY, SERVICE_PORT, Object, object_meta
from memoserve_operator.builders.traffic import backends

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"


def parent_ref(isvc: InferenceService) -> Object:
    """The Gateway the route attaches to: the user's shared one, or the service's own."""
    gateway = _spec(isvc)
    ref: Object = {"group": GATEWAY_GROUP, "kind": "Gateway"}
    if gateway.parent_ref is None:
        return ref | {"name": isvc.name}
    ref["name"] = gateway.parent_ref.name
    if gateway.parent_ref.namespace:
        ref["namespace"] = gateway.parent_ref.namespace
    if gateway.parent_ref.section_name:
        ref["sectionName"] = gateway.parent_ref.section_name
    return ref


def build_http_route(isvc: InferenceService) -> Object:
    gateway = _spec(isvc)
    rules = [_rule(isvc, [_prefix(gateway.path)], SERVICE_PORT)]
    if isvc.spec.grpc_through_ingress:
        grpc = [_prefix(f"/{service}") for service in GRPC_SERVICES]
        rules.insert(0, _rule(isvc, grpc, GRPC_TLS_PORT))
    spec: Object = {"parentRefs": [parent_ref(isvc)]}
    if gateway.hostnames:
        spec["hostnames"] = list(gateway.hostnames)
    spec["rules"] = rules
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": object_meta(isvc, GATEWAY),
        "spec": spec,
    }


def _spec(isvc: InferenceService) -> GatewaySpec:
    gateway = isvc.spec.gateway
    assert gateway is not None  # build_all builds Gateway API objects only for spec.gateway
    return gateway


def _prefix(path: str) -> Object:
    return {"path": {"type": "PathPrefix", "value": path}}


def _rule(isvc: InferenceService, matches: list[Object], port: int) -> Object:
    return {
        "matches": matches,
        "backendRefs": [
            {"kind": "Service", "name": backend.service, "port": port, "weight": backend.weight}
            for backend in backends(isvc)
        ],
    }
