"""The serving pod template: one container running ``memoserve serve``."""

from __future__ import annotations

import math

from memoserve_contract.pod_settings import GRPC_TLS_DIR, HTTP_PORT, MODEL_DIR, TERMINATION_LOG
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.env import container_env, drain_seconds, redis_files
from memoserve_operator.builders.grpc_tls import VOLUME as GRPC_TLS_VOLUME
from memoserve_operator.builders.grpc_tls import grpc_tls_volume
from memoserve_operator.builders.meta import (
    HTTP_PORT_NAME,
    SERVING,
    Object,
    labels,
    selector_labels,
    serving_ports,
)
from memoserve_operator.builders.redis import redis_refs
from memoserve_operator.settings import OperatorSettings

GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"
CHECKSUM_ANNOTATION = "serving.memoserve.dev/config-checksum"
# memoserve_serving.server.GRACEFUL_SHUTDOWN_SECONDS: after the drain, in-flight requests get
# this long to finish. (Not imported: that module pulls in uvicorn, which the operator lacks.)
SERVER_SHUTDOWN_SECONDS = 30
STARTUP_PERIOD_SECONDS = 5


def image(isvc: InferenceService, settings: OperatorSettings) -> str:
    if isvc.spec.image:
        return isvc.spec.image
    return settings.default_gpu_image if isvc.spec.gpu else settings.default_image


def resources(isvc: InferenceService, settings: OperatorSettings) -> Object:
    """The operator's default requests, overridden key by key by spec.resources.

    No CPU limit (throttling costs latency); the memory limit defaults to the memory request
    so a pod is never OOM-killed for memory the scheduler did not reserve for it.
    """
    spec = isvc.spec.resources
    requests: dict[str, int | str] = {
        **settings.default_requests,
        **((spec and spec.requests) or {}),
    }
    limits: dict[str, int | str] = dict((spec and spec.limits) or {})
    if "memory" in requests:
        limits.setdefault("memory", requests["memory"])
    if isvc.spec.gpu is not None:
        limits[GPU_RESOURCE] = isvc.spec.gpu.count  # extended resources: request = limit
    return {"requests": requests, "limits": limits}


def _probe(path: str, *, period: int, timeout: int, failures: int) -> Object:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def container(isvc: InferenceService, settings: OperatorSettings) -> Object:
    mounts: list[Object] = [
        {"name": "models", "mountPath": str(MODEL_DIR)},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    mounts += [mount for _, mount in redis_files(redis_refs(isvc))]
    if isvc.spec.grpc_through_ingress:
        mounts.append({"name": GRPC_TLS_VOLUME, "mountPath": str(GRPC_TLS_DIR), "readOnly": True})
    startup_failures = math.ceil(settings.model_load_timeout_seconds / STARTUP_PERIOD_SECONDS)
    return {
        "name": "server",
        "image": image(isvc, settings),
        "imagePullPolicy": "IfNotPresent",
        "command": ["memoserve", "serve"],
        "ports": [
            {"name": name, "containerPort": port, "protocol": "TCP"}
            for name, port in serving_ports(isvc)
        ],
        "env": container_env(isvc, settings),
        "resources": resources(isvc, settings),
        # The server loads the model before it opens its port, so "live" answering means
        # "loaded"; the startup probe gives a large download its whole budget.
        "startupProbe": _probe(
            "/v2/health/live", period=STARTUP_PERIOD_SECONDS, timeout=2, failures=startup_failures
        ),
        "readinessProbe": _probe("/v2/health/ready", period=5, timeout=2, failures=2),
        "livenessProbe": _probe("/v2/health/live", period=10, timeout=5, failures=3),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
        # The server writes why it cannot start to the termination log; anything else that
        # kills it leaves the log's last lines there instead.
        "terminationMessagePath": str(TERMINATION_LOG),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def termination_grace_seconds(isvc: InferenceService, settings: OperatorSettings) -> int:
    """Drain (not-ready while the load balancer lets go) + in-flight requests + a margin.

    No preStop hook: the server drains on SIGTERM itself (readiness 503, still answering), and a
    preStop sleep would only add to that period, not overlap it.
    """
    return math.ceil(drain_seconds(isvc, settings)) + SERVER_SHUTDOWN_SECONDS + 5


def pod_template(isvc: InferenceService, settings: OperatorSettings, checksum: str) -> Object:
    pod_labels = labels(isvc, SERVING)
    volumes: list[Object] = [
        {"name": "models", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    volumes += [volume for volume, _ in redis_files(redis_refs(isvc))]
    if isvc.spec.grpc_through_ingress:
        volumes.append(grpc_tls_volume(isvc))
    spec: Object = {
        "serviceAccountName": isvc.name,
        "automountServiceAccountToken": False,  # the server never calls the Kubernetes API
        "terminationGracePeriodSeconds": termination_grace_seconds(isvc, settings),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,  # volumes (the AUTH string) readable by the group
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(isvc, settings)],
        "volumes": volumes,
        "topologySpreadConstraints": [
            _spread(isvc, "topology.kubernetes.io/zone"),
            _spread(isvc, "kubernetes.io/hostname"),
        ],
    }
    if isvc.spec.gpu is not None and isvc.spec.gpu.type is not None:
        spec["nodeSelector"] = {GPU_NODE_LABEL: str(isvc.spec.gpu.type)}
        # GKE taints GPU nodes so that only pods asking for GPUs land there.
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "metadata": {
            "labels": pod_labels,
            "annotations": {
                CHECKSUM_ANNOTATION: checksum,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(HTTP_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": spec,
    }


def _spread(isvc: InferenceService, topology_key: str) -> Object:
    # ScheduleAnyway: spreading is a preference; a zone without GPUs must not block a rollout.
    # matchLabelKeys: spread each ReplicaSet on its own, so a rollout is not skewed by old pods.
    return {
        "maxSkew": 1,
        "topologyKey": topology_key,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector_labels(isvc)},
        "matchLabelKeys": ["pod-template-hash"],
    }
