"""The ``<name>-grpc-tls`` Secret (kubernetes.io/tls): the pods' key and certificate for the
TLS gRPC port the load balancer sends HTTP/2 to (see grpc_tls/certificate.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import SERVING, Object, object_meta

CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"
VOLUME = "grpc-tls"


@dataclass(frozen=True)
class TlsMaterial:
    """A PEM certificate and its PEM private key."""

    cert_pem: str
    key_pem: str


def grpc_tls_secret_name(isvc: InferenceService) -> str:
    return f"{isvc.name}-grpc-tls"


def build_grpc_tls_secret(isvc: InferenceService, material: TlsMaterial) -> Object:
    # data, not stringData (as for <name>-redis): stringData would look changed to every apply.
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(isvc, SERVING, name=grpc_tls_secret_name(isvc)),
        "type": "kubernetes.io/tls",
        "data": {
            CERT_KEY: base64.b64encode(material.cert_pem.encode()).decode(),
            KEY_KEY: base64.b64encode(material.key_pem.encode()).decode(),
        },
    }


def grpc_tls_volume(isvc: InferenceService) -> Object:
    # 0440 with the pod's fsGroup: readable by the server, not by the world.
    return {
        "name": VOLUME,
        "secret": {"secretName": grpc_tls_secret_name(isvc), "defaultMode": 0o440},
    }
