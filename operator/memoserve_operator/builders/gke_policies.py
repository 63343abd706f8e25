"""GKE's Gateway policies (networking.gke.io/v1), attached to a Service by targetRef: what the
BackendConfig says for the Ingress, for a service behind the Gateway API (GKE's Gateway
controller ignores BackendConfig).

- HealthCheckPolicy: the load balancer checks each pod's readiness endpoint, not ``GET /``.
- GCPBackendPolicy: the request timeout and connection draining.

One of each per Service that takes the route's traffic (``traffic.backends``), named after it.
"""

from __future__ import annotations

from memoserve_contract.pod_settings import HTTP_PORT
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.backend_config import BACKEND_TIMEOUT_SECONDS
from memoserve_operator.builders.env import drain_seconds
from memoserve_operator.builders.meta import GATEWAY, Object, object_meta
from memoserve_operator.builders.pod import SERVER_SHUTDOWN_SECONDS
from memoserve_operator.builders.traffic import backends
from memoserve_operator.settings import OperatorSettings

GKE_NETWORKING = "networking.gke.io/v1"
READY_PATH = "/v2/health/ready"


def build_health_check_policies(isvc: InferenceService) -> list[Object]:
    return [_health_check_policy(isvc, backend.service) for backend in backends(isvc)]


def build_backend_policies(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    return [_backend_policy(isvc, settings, backend.service) for backend in backends(isvc)]


def _target(service: str) -> Object:
    return {"group": "", "kind": "Service", "name": service}


def _health_check_policy(isvc: InferenceService, service: str) -> Object:
    return {
        "apiVersion": GKE_NETWORKING,
        "kind": "HealthCheckPolicy",
        "metadata": object_meta(isvc, GATEWAY, name=service),
        "spec": {
            # The same check as the Ingress's BackendConfig: the readiness endpoint says 503
            # while the model loads and while the pod drains; 5 s x 2 failures take a draining
            # pod out well inside the drain period. A fixed port: the gRPC port's backend
            # service is checked on the same HTTP endpoint.
            "default": {
                "checkIntervalSec": 5,
                "timeoutSec": 3,
                "healthyThreshold": 1,
                "unhealthyThreshold": 2,
                "config": {
                    "type": "HTTP",
                    "httpHealthCheck": {
                        "portSpecification": "USE_FIXED_PORT",
                        "port": HTTP_PORT,
                        "requestPath": READY_PATH,
                    },
                },
            },
            "targetRef": _target(service),
        },
    }


def _backend_policy(isvc: InferenceService, settings: OperatorSettings, service: str) -> Object:
    return {
        "apiVersion": GKE_NETWORKING,
        "kind": "GCPBackendPolicy",
        "metadata": object_meta(isvc, GATEWAY, name=service),
        "spec": {
            "default": {
                "timeoutSec": BACKEND_TIMEOUT_SECONDS,
                # A removed pod keeps its open connections as long as the server serves them:
                # the drain period, then the in-flight grace (as the BackendConfig).
                "connectionDraining": {
                    "drainingTimeoutSec": drain_seconds(isvc, settings) + SERVER_SHUTDOWN_SECONDS
                },
            },
            "targetRef": _target(service),
        },
    }
