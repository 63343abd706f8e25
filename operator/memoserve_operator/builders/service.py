"""The Service in front of the serving pods (and, with an Ingress or a Gateway, behind the load
balancer). GKE's Gateway controller makes the NEGs of a Service an HTTPRoute names by itself:
the NEG and BackendConfig annotations are the Ingress's only."""

from __future__ import annotations

import json

from memoserve_contract.pod_settings import model_tier_name
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import (
    GRPC_PORT_NAME,
    GRPC_TLS_PORT_NAME,
    HTTP_PORT_NAME,
    MODEL,
    SERVICE_PORT,
    SERVING,
    Object,
    model_ports,
    model_selector_labels,
    object_meta,
    selector_labels,
    serving_ports,
)

NEG_ANNOTATION = "cloud.google.com/neg"
BACKEND_CONFIG_ANNOTATION = "cloud.google.com/backend-config"
# GKE Ingress reads the backend protocol from this annotation: HTTP2 means HTTP/2 over TLS.
APP_PROTOCOLS_ANNOTATION = "cloud.google.com/app-protocols"
# spec.ports[].appProtocol, for Gateway API implementations, meshes and readers: gRPC in
# plaintext is h2c (Kubernetes' own name); GKE's names are upper case.
APP_PROTOCOLS = {GRPC_PORT_NAME: "kubernetes.io/h2c", GRPC_TLS_PORT_NAME: "HTTP2"}


def build_service(
    isvc: InferenceService,
    *,
    name: str | None = None,
    component: str = SERVING,
    match: dict[str, str] | None = None,
) -> Object:
    """NAME, the serving pods' (a canary's: ``name``, ``component``, ``match`` its own)."""
    annotations: dict[str, str] = {}
    if isvc.spec.ingress_enabled:
        # Container-native load balancing: the load balancer sends to pod IPs (NEGs) and
        # health-checks each pod itself, with the BackendConfig of the same name.
        annotations[NEG_ANNOTATION] = json.dumps({"ingress": True})
        annotations[BACKEND_CONFIG_ANNOTATION] = json.dumps({"default": isvc.name})
    if isvc.spec.grpc_through_ingress and isvc.spec.ingress_enabled:
        # GKE's Gateway controller reads the ports' appProtocol instead (APP_PROTOCOLS).
        annotations[APP_PROTOCOLS_ANNOTATION] = json.dumps({GRPC_TLS_PORT_NAME: "HTTP2"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(isvc, component, name=name, annotations=annotations),
        "spec": {
            "type": "ClusterIP",
            "selector": match if match is not None else selector_labels(isvc),
            "ports": [_port(name, number) for name, number in serving_ports(isvc)],
        },
    }


def build_model_service(isvc: InferenceService) -> Object:
    """NAME-model: the model tier, for the front only (ClusterIP, its port number as is: the
    front's upstream URL names it)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(isvc, MODEL, name=model_tier_name(isvc)),
        "spec": {
            "type": "ClusterIP",
            "selector": model_selector_labels(isvc),
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in model_ports(isvc)
            ],
        },
    }


def _port(name: str, container_port: int) -> Object:
    # HTTP on 80 (http://NAME.NAMESPACE/v2/...); gRPC on the pods' own port numbers.
    port: Object = {
        "name": name,
        "port": SERVICE_PORT if name == HTTP_PORT_NAME else container_port,
        "targetPort": name,
        "protocol": "TCP",
    }
    if name in APP_PROTOCOLS:
        port["appProtocol"] = APP_PROTOCOLS[name]
    return port
