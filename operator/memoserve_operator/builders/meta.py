"""Names, labels and metadata every child object shares."""

from __future__ import annotations

from typing import Any

from memoserve_contract.pod_settings import (
    GRPC_PORT,
    GRPC_TLS_PORT,
    HTTP_PORT,
    model_port,
)
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.names import API_VERSION, KIND

Object = dict[str, Any]
"""A Kubernetes object as the API takes it (JSON-ready)."""

APP_NAME = "memoserve"
MANAGED_BY = "memoserve-operator"

# Components (app.kubernetes.io/component), one per role a child plays.
# The pods clients reach: one tier's serving pods, or the cache front of a split service
# (docs/front.md). The front keeps this component: a Deployment's selector is immutable, so
# turning the split on or off is a rolling update of NAME, not a delete and a re-create.
SERVING = "serving"
MODEL = "model"  # the model tier of a split service (NAME-model), behind the front
CANARY = "canary"  # the canary's pods (NAME-canary, spec.canary): never the stable Service's
INGRESS = "ingress"
GATEWAY = "gateway"  # the Gateway API objects: HTTPRoute, the service's own Gateway, policies
AUTOSCALER = "autoscaler"
CACHE = "cache"
MONITORING = "monitoring"

# The Prometheus label that names the InferenceService on every series scraped from its pods
# (the PodMonitoring copies the pods' app.kubernetes.io/instance into it). spec.model.name, the
# metrics' own `model` label, may be shared by several services of a namespace; this is not.
SERVICE_METRIC_LABEL = "memoserve_service"

HTTP_PORT_NAME = "http"
GRPC_PORT_NAME = "grpc"
GRPC_TLS_PORT_NAME = "grpc-tls"
SERVICE_PORT = 80  # in-cluster clients call http://NAME.NAMESPACE/v2/...


def serving_ports(isvc: InferenceService) -> list[tuple[str, int]]:
    """(name, container port) of each port the serving pods listen on."""
    ports = [(HTTP_PORT_NAME, HTTP_PORT)]
    if isvc.spec.grpc_enabled:
        ports.append((GRPC_PORT_NAME, GRPC_PORT))
    if isvc.spec.grpc_through_ingress:
        ports.append((GRPC_TLS_PORT_NAME, GRPC_TLS_PORT))
    return ports


def selector_labels(isvc: InferenceService) -> dict[str, str]:
    """The labels that select a service's pods (a Deployment selector is immutable: keep few)."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": isvc.name,
        "app.kubernetes.io/component": SERVING,
    }


def model_selector_labels(isvc: InferenceService) -> dict[str, str]:
    """The model tier's pods: disjoint from selector_labels (another component)."""
    return selector_labels(isvc) | {"app.kubernetes.io/component": MODEL}


def canary_selector_labels(isvc: InferenceService) -> dict[str, str]:
    """The canary's pods: disjoint from selector_labels (another component), so the stable
    Service, PDB and NetworkPolicy never select them."""
    return selector_labels(isvc) | {"app.kubernetes.io/component": CANARY}


def canary_selector(isvc: InferenceService) -> str:
    """canary_selector_labels as a label-selector string."""
    return ",".join(f"{key}={value}" for key, value in canary_selector_labels(isvc).items())


def model_ports(isvc: InferenceService) -> list[tuple[str, int]]:
    """The model tier's one port: v2 REST (the front calls it; no gRPC, no TLS)."""
    return [(HTTP_PORT_NAME, model_port(isvc))]


def selector(isvc: InferenceService) -> str:
    """selector_labels as a label-selector string (status.selector, for the scale subresource)."""
    return ",".join(f"{key}={value}" for key, value in selector_labels(isvc).items())


def model_selector(isvc: InferenceService) -> str:
    """model_selector_labels as a label-selector string."""
    return ",".join(f"{key}={value}" for key, value in model_selector_labels(isvc).items())


def labels(isvc: InferenceService, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": isvc.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": APP_NAME,
    }


def owner_references(isvc: InferenceService) -> list[Object]:
    """The InferenceService as controller owner, so deleting it garbage-collects its children.

    Without a uid (``memoserve render`` of a file) there is no owner to point at: a made-up uid
    would make the garbage collector delete the objects as soon as someone applied them.
    """
    if not isvc.metadata.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": isvc.name,
            "uid": isvc.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_meta(
    isvc: InferenceService,
    component: str,
    *,
    name: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Object:
    meta: Object = {
        "name": name or isvc.name,
        "namespace": isvc.namespace,
        "labels": labels(isvc, component),
    }
    if annotations:
        meta["annotations"] = annotations
    if owners := owner_references(isvc):
        meta["ownerReferences"] = owners
    return meta


def redis_secret_name(isvc: InferenceService) -> str:
    """The Secret the serving pods read the Redis URL (and, for Memorystore, AUTH and CA) from."""
    return f"{isvc.name}-redis"
