"""The Ingress (networking.k8s.io/v1) that GKE turns into a Google Cloud load balancer."""

from __future__ import annotations

from memoserve_contract.pod_settings import GRPC_TLS_PORT
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.ingress import IngressClass
from memoserve_operator.builders.meta import INGRESS, SERVICE_PORT, Object, object_meta

# GKE reads the class from this annotation only; spec.ingressClassName would leave the
# Ingress to no controller (GKE's Ingress troubleshooting docs).
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
GLOBAL_STATIC_IP_ANNOTATION = "kubernetes.io/ingress.global-static-ip-name"
REGIONAL_STATIC_IP_ANNOTATION = "kubernetes.io/ingress.regional-static-ip-name"
MANAGED_CERTIFICATES_ANNOTATION = "networking.gke.io/managed-certificates"
# The gRPC services the pods serve: a gRPC call is POST /<service>/<method>, at the root
# whatever spec.ingress.path says, and goes to the TLS gRPC port (HTTP/2 to the pods).
GRPC_SERVICES = (
    "inference.GRPCInferenceService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
)


def managed_certificate_name(isvc: InferenceService) -> str | None:
    """The ManagedCertificate the Ingress uses: our own (named after the service) or the user's."""
    ingress = isvc.spec.ingress
    if ingress is None or not ingress.enabled:
        return None
    if ingress.managed_certificate:
        return isvc.name
    return ingress.managed_certificate_name


def build_ingress(isvc: InferenceService) -> Object:
    ingress = isvc.spec.ingress
    assert ingress is not None  # build_all calls this only for an enabled ingress
    annotations = {CLASS_ANNOTATION: str(ingress.class_name)}
    if ingress.static_ip_name:
        # The external load balancer takes a global address, the internal one a regional one.
        key = (
            GLOBAL_STATIC_IP_ANNOTATION
            if ingress.class_name == IngressClass.GCE
            else REGIONAL_STATIC_IP_ANNOTATION
        )
        annotations[key] = ingress.static_ip_name
    if (certificate := managed_certificate_name(isvc)) is not None:
        annotations[MANAGED_CERTIFICATES_ANNOTATION] = certificate
    paths = [_path(isvc, ingress.path, SERVICE_PORT)]
    if isvc.spec.grpc_through_ingress:
        paths = [_path(isvc, f"/{service}", GRPC_TLS_PORT) for service in GRPC_SERVICES] + paths
    rule: Object = {"http": {"paths": paths}}
    if ingress.host:
        rule = {"host": ingress.host, **rule}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": object_meta(isvc, INGRESS, annotations=annotations),
        "spec": {"rules": [rule]},
    }


def _path(isvc: InferenceService, path: str, port: int) -> Object:
    return {
        "path": path,
        "pathType": "Prefix",
        "backend": {"service": {"name": isvc.name, "port": {"number": port}}},
    }
