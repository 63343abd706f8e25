"""The service's own Gateway (gateway.networking.k8s.io/v1), when spec.gateway names a GKE
GatewayClass instead of an existing Gateway: GKE makes a Google Cloud load balancer of it.

Listeners: HTTP on port 80, and with spec.gateway.tls HTTPS on 443. Routes from the service's
namespace only (the default): the Gateway is the service's, not a shared one. The address is a
reserved one by name (GKE's ``NamedAddress``), else an ephemeral one.
"""

from __future__ import annotations

from memoserve_contract.resource.gateway import GatewaySpec, GatewayTlsSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.http_route import GATEWAY_API
from memoserve_operator.builders.meta import GATEWAY, Object, object_meta

# GKE's Gateway TLS knobs (GKE docs, "Gateway security"): Compute Engine SSL certificates by
# name in a listener option, a Certificate Manager map in a Gateway annotation.
PRE_SHARED_CERTS_OPTION = "networking.gke.io/pre-shared-certs"
CERTIFICATE_MAP_ANNOTATION = "networking.gke.io/certmap"
NAMED_ADDRESS = "NamedAddress"
HTTP_PORT, HTTPS_PORT = 80, 443


def build_gateway(isvc: InferenceService) -> Object:
    gateway = isvc.spec.gateway
    # build_all asks only for spec.gateway with gatewayClassName (the CRD's CEL rules).
    assert gateway is not None
    assert gateway.gateway_class_name is not None
    listeners: list[Object] = [{"name": "http", "protocol": "HTTP", "port": HTTP_PORT}]
    annotations: dict[str, str] = {}
    if gateway.tls is not None:
        listeners.append(_https(gateway.tls))
        if gateway.tls.certificate_map:
            annotations[CERTIFICATE_MAP_ANNOTATION] = gateway.tls.certificate_map
    spec: Object = {"gatewayClassName": str(gateway.gateway_class_name), "listeners": listeners}
    if gateway.address_name:
        spec["addresses"] = [{"type": NAMED_ADDRESS, "value": gateway.address_name}]
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": object_meta(isvc, GATEWAY, annotations=annotations),
        "spec": spec,
    }


def _https(tls: GatewayTlsSpec) -> Object:
    listener: Object = {"name": "https", "protocol": "HTTPS", "port": HTTPS_PORT}
    if tls.secret_name:
        listener["tls"] = {
            "mode": "Terminate",
            "certificateRefs": [{"kind": "Secret", "name": tls.secret_name}],
        }
    elif tls.pre_shared_certificates:
        listener["tls"] = {
            "mode": "Terminate",
            "options": {PRE_SHARED_CERTS_OPTION: ",".join(tls.pre_shared_certificates)},
        }
    # A certificate map is the Gateway's annotation: the listener itself names none.
    return listener


def uses_tls(gateway: GatewaySpec) -> bool:
    """The service's own Gateway answers HTTPS (status.url says https)."""
    return gateway.owns_gateway and gateway.tls is not None
