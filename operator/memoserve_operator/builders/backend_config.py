"""The BackendConfig (cloud.google.com/v1): how the Google Cloud load balancer treats the pods."""

from __future__ import annotations

from memoserve_contract.pod_settings import HTTP_PORT
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.env import drain_seconds
from memoserve_operator.builders.meta import INGRESS, Object, object_meta
from memoserve_operator.builders.pod import SERVER_SHUTDOWN_SECONDS
from memoserve_operator.settings import OperatorSettings

# Longest a request may take at the load balancer (a cold GPU batch can take a while).
BACKEND_TIMEOUT_SECONDS = 60


def build_backend_config(isvc: InferenceService, settings: OperatorSettings) -> Object:
    return {
        "apiVersion": "cloud.google.com/v1",
        "kind": "BackendConfig",
        "metadata": object_meta(isvc, INGRESS),
        "spec": {
            "timeoutSec": BACKEND_TIMEOUT_SECONDS,
            # A removed pod keeps its open connections as long as the server keeps serving
            # them: the drain period, then the in-flight grace.
            "connectionDraining": {
                "drainingTimeoutSec": drain_seconds(isvc, settings) + SERVER_SHUTDOWN_SECONDS
            },
            # The readiness endpoint, not the load balancer's default GET /: it says 503 while
            # the model loads and while the pod drains. 5 s x 2 failures: a draining pod stops
            # getting traffic well inside the default 15 s drain.
            "healthCheck": {
                "type": "HTTP",
                "requestPath": "/v2/health/ready",
                "port": HTTP_PORT,
                "checkIntervalSec": 5,
                "timeoutSec": 3,
                "healthyThreshold": 1,
                "unhealthyThreshold": 2,
            },
        },
    }
