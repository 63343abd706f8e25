"""The Service in front of the serving pods (and, with an Ingress, behind the load balancer)."""

from __future__ import annotations

import json

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import (
    HTTP_PORT_NAME,
    SERVICE_PORT,
    SERVING,
    Object,
    object_meta,
    selector_labels,
)

NEG_ANNOTATION = "cloud.google.com/neg"
BACKEND_CONFIG_ANNOTATION = "cloud.google.com/backend-config"


def build_service(isvc: InferenceService) -> Object:
    annotations: dict[str, str] = {}
    if isvc.spec.ingress_enabled:
        # Container-native load balancing: the load balancer sends to pod IPs (NEGs) and
        # health-checks each pod itself, with the BackendConfig of the same name.
        annotations[NEG_ANNOTATION] = json.dumps({"ingress": True})
        annotations[BACKEND_CONFIG_ANNOTATION] = json.dumps({"default": isvc.name})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(isvc, SERVING, annotations=annotations),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(isvc),
            "ports": [
                {
                    "name": HTTP_PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": HTTP_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
