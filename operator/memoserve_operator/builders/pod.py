"""The serving pod template: one container running ``memoserve serve``."""

from __future__ import annotations

import copy
import math

from memoserve_contract.pod_settings import GRPC_TLS_DIR, HTTP_PORT, MODEL_DIR, TERMINATION_LOG
from memoserve_contract.resource.gpu import GpuSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.names import qualified
from memoserve_contract.resource.pods import ResourcesSpec
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
CHECKSUM_ANNOTATION = qualified("config-checksum")
# memoserve_serving.http.server.GRACEFUL_SHUTDOWN_SECONDS: after the drain, in-flight requests get
# this long to finish. (Not imported: that module pulls in uvicorn, which the operator lacks.)
SERVER_SHUTDOWN_SECONDS = 30
STARTUP_PERIOD_SECONDS = 5


def image(isvc: InferenceService, settings: OperatorSettings) -> str:
    if isvc.spec.image:
        return isvc.spec.image
    return settings.default_gpu_image if isvc.spec.gpu else settings.default_image


def resources(isvc: InferenceService, settings: OperatorSettings) -> Object:
    """The operator's default requests, overridden key by key by spec.resources; the GPUs of
    spec.gpu as the limit.

    No CPU limit (throttling costs latency); the memory limit defaults to the memory request
    so a pod is never OOM-killed for memory the scheduler did not reserve for it.
    """
    return merged_resources(settings, isvc.spec.resources, isvc.spec.gpu)


def merged_resources(
    settings: OperatorSettings, spec: ResourcesSpec | None, gpu: GpuSpec | None = None
) -> Object:
    requests: dict[str, int | str] = {
        **settings.default_requests,
        **((spec and spec.requests) or {}),
    }
    limits: dict[str, int | str] = dict((spec and spec.limits) or {})
    if "memory" in requests:
        limits.setdefault("memory", requests["memory"])
    if gpu is not None:
        limits[GPU_RESOURCE] = gpu.count  # extended resources: request = limit
    return {"requests": requests, "limits": limits}


def _probe(path: str, *, period: int, timeout: int, failures: int) -> Object:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


SECURITY_CONTEXT: Object = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def client_mounts(isvc: InferenceService) -> list[Object]:
    """The Redis files and the gRPC TLS key of the pods clients reach."""
    mounts = [mount for _, mount in redis_files(redis_refs(isvc))]
    if isvc.spec.grpc_through_ingress:
        mounts.append({"name": GRPC_TLS_VOLUME, "mountPath": str(GRPC_TLS_DIR), "readOnly": True})
    return mounts


def client_volumes(isvc: InferenceService) -> list[Object]:
    volumes = [volume for volume, _ in redis_files(redis_refs(isvc))]
    if isvc.spec.grpc_through_ingress:
        volumes.append(grpc_tls_volume(isvc))
    return volumes


def container(isvc: InferenceService, settings: OperatorSettings) -> Object:
    """The one-tier serving container: model and cache in one process."""
    return memoserve_container(
        isvc,
        settings,
        image=image(isvc, settings),
        env=container_env(isvc, settings),
        resources=resources(isvc, settings),
        mounts=[MODELS_MOUNT, TMP_MOUNT, *client_mounts(isvc)],
        ports=serving_ports(isvc),
    )


MODELS_MOUNT: Object = {"name": "models", "mountPath": str(MODEL_DIR)}
TMP_MOUNT: Object = {"name": "tmp", "mountPath": "/tmp"}
MODELS_VOLUME: Object = {"name": "models", "emptyDir": {}}
TMP_VOLUME: Object = {"name": "tmp", "emptyDir": {}}


def memoserve_container(
    isvc: InferenceService,
    settings: OperatorSettings,
    *,
    image: str,
    env: list[Object],
    resources: Object,
    mounts: list[Object],
    ports: list[tuple[str, int]],
) -> Object:
    """A container running ``memoserve serve`` (one tier, the front or the model tier)."""
    startup_failures = math.ceil(settings.model_load_timeout_seconds / STARTUP_PERIOD_SECONDS)
    return {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memoserve", "serve"],
        "ports": [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in ports],
        "env": env,
        "resources": resources,
        # The server loads the model before it opens its port, so "live" answering means
        # "loaded"; the startup probe gives a large download its whole budget.
        "startupProbe": _probe(
            "/v2/health/live", period=STARTUP_PERIOD_SECONDS, timeout=2, failures=startup_failures
        ),
        "readinessProbe": _probe("/v2/health/ready", period=5, timeout=2, failures=2),
        "livenessProbe": _probe("/v2/health/live", period=10, timeout=5, failures=3),
        "securityContext": copy.deepcopy(SECURITY_CONTEXT),
        "volumeMounts": copy.deepcopy(mounts),
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


def pod_template(
    isvc: InferenceService,
    settings: OperatorSettings,
    checksum: str,
    *,
    component: str = SERVING,
    match: dict[str, str] | None = None,
) -> Object:
    """The one-tier serving pods (a canary's: ``component`` and ``match`` its own)."""
    return template(
        isvc,
        settings,
        checksum,
        main=container(isvc, settings),
        volumes=[MODELS_VOLUME, TMP_VOLUME, *client_volumes(isvc)],
        component=component,
        match=match,
    )


def template(
    isvc: InferenceService,
    settings: OperatorSettings,
    checksum: str,
    *,
    main: Object,
    volumes: list[Object],
    component: str = SERVING,
    match: dict[str, str] | None = None,
    gpu: bool = True,
    scrape_port: int | None = HTTP_PORT,
) -> Object:
    """A pod template of the service: ``main`` as its container, ``match`` its selector
    (default: the serving pods'), on spec.gpu's nodes unless ``gpu`` is False, Prometheus
    scrape annotations for ``scrape_port`` (None: none)."""
    match = match if match is not None else selector_labels(isvc)
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
        "containers": [main],
        "volumes": copy.deepcopy(volumes),
        "topologySpreadConstraints": [
            _spread(match, "topology.kubernetes.io/zone"),
            _spread(match, "kubernetes.io/hostname"),
        ],
    }
    gpu_spec = isvc.spec.gpu if gpu else None
    if gpu_spec is not None and gpu_spec.type is not None:
        spec["nodeSelector"] = {GPU_NODE_LABEL: str(gpu_spec.type)}
        # GKE taints GPU nodes so that only pods asking for GPUs land there.
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    annotations = {CHECKSUM_ANNOTATION: checksum}
    if scrape_port is not None:
        annotations |= {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(scrape_port),
            "prometheus.io/path": "/metrics",
        }
    return {
        "metadata": {"labels": labels(isvc, component), "annotations": annotations},
        "spec": spec,
    }


def _spread(match: dict[str, str], topology_key: str) -> Object:
    # ScheduleAnyway: spreading is a preference; a zone without GPUs must not block a rollout.
    # matchLabelKeys: spread each ReplicaSet on its own, so a rollout is not skewed by old pods.
    return {
        "maxSkew": 1,
        "topologyKey": topology_key,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": dict(match)},
        "matchLabelKeys": ["pod-template-hash"],
    }
