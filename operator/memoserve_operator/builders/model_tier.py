"""The model tier of a split service (docs/front.md): Deployment NAME-model on the GPU nodes,
with ``memoserve serve`` and the built-in runtime (no cache: the front has it) or
``spec.model.server``'s container (any v2 REST server); its HPA and PDB.

Its pods carry the component ``model``, so no selector of the front's ever matches them.
"""

from __future__ import annotations

import hashlib
import json
import math

from memoserve_contract.pod_settings import TERMINATION_LOG, model_tier_name
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.model import ModelServerSpec
from memoserve_operator.builders.deployment import deployment
from memoserve_operator.builders.env import model_env
from memoserve_operator.builders.hpa import (
    cpu_metric,
    hpa,
    inflight_metric,
    upstream_inflight_metric,
)
from memoserve_operator.builders.meta import (
    HTTP_PORT_NAME,
    MODEL,
    Object,
    model_ports,
    model_selector_labels,
)
from memoserve_operator.builders.pdb import build_pdb
from memoserve_operator.builders.pod import (
    MODELS_MOUNT,
    MODELS_VOLUME,
    SECURITY_CONTEXT,
    STARTUP_PERIOD_SECONDS,
    TMP_MOUNT,
    TMP_VOLUME,
    image,
    memoserve_container,
    resources,
    template,
)
from memoserve_operator.settings import OperatorSettings


def model_checksum(isvc: InferenceService) -> str:
    """What the model tier's pods load at start: the model (and the server's container)."""
    material = isvc.spec.model.model_dump(mode="json", by_alias=True)
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def server_container(
    isvc: InferenceService, settings: OperatorSettings, server: ModelServerSpec
) -> Object:
    """model.server's container, as restricted as ours; probed on its readiness path."""
    ready: Object = {"httpGet": {"path": server.readiness_path, "port": HTTP_PORT_NAME}}
    startup_failures = math.ceil(settings.model_load_timeout_seconds / STARTUP_PERIOD_SECONDS)
    main: Object = {"name": "server", "image": server.image, "imagePullPolicy": "IfNotPresent"}
    if server.command is not None:
        main["command"] = list(server.command)
    if server.args is not None:
        main["args"] = list(server.args)
    return main | {
        "ports": [
            {"name": name, "containerPort": port, "protocol": "TCP"}
            for name, port in model_ports(isvc)
        ],
        "env": [{"name": var.name, "value": var.value} for var in server.env],
        "resources": resources(isvc, settings),
        # Ready means loaded: the startup probe gives the load the operator's whole budget.
        "startupProbe": ready
        | {"periodSeconds": STARTUP_PERIOD_SECONDS, "timeoutSeconds": 2}
        | {"failureThreshold": startup_failures},
        "readinessProbe": ready | {"periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 2},
        # Not the readiness path: a server that is busy or reloading is not dead.
        "livenessProbe": {
            "tcpSocket": {"port": HTTP_PORT_NAME},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": dict(SECURITY_CONTEXT),
        "volumeMounts": [dict(MODELS_MOUNT), dict(TMP_MOUNT)],
        "terminationMessagePath": str(TERMINATION_LOG),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def model_container(isvc: InferenceService, settings: OperatorSettings) -> Object:
    server = isvc.spec.model.server
    if server is not None:
        return server_container(isvc, settings, server)
    return memoserve_container(
        isvc,
        settings,
        image=image(isvc, settings),
        env=model_env(isvc, settings),
        resources=resources(isvc, settings),
        mounts=[MODELS_MOUNT, TMP_MOUNT],
        ports=model_ports(isvc),
    )


def build_model_deployment(isvc: InferenceService, settings: OperatorSettings) -> Object:
    builtin = isvc.spec.model.server is None
    pods = template(
        isvc,
        settings,
        model_checksum(isvc),
        main=model_container(isvc, settings),
        volumes=[MODELS_VOLUME, TMP_VOLUME],
        component=MODEL,
        match=model_selector_labels(isvc),
        # Where an external server publishes metrics is its own business.
        scrape_port=model_ports(isvc)[0][1] if builtin else None,
    )
    replicas = None if isvc.spec.autoscaled else isvc.spec.fixed_replicas
    return deployment(
        isvc,
        settings,
        template=pods,
        replicas=replicas,
        name=model_tier_name(isvc),
        component=MODEL,
        match=model_selector_labels(isvc),
    )


def model_metrics(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    """The model tier's load, and CPU as well when spec.autoscaling names a CPU target.

    The built-in runtime: the Pods metric memoserve_inflight_requests (model executions in
    flight: only misses reach it), with the operator's target when the spec names none. An
    external server publishes no such metric: with targetInflightRequestsPerPod, the External
    metric of what the fronts have in flight to it (per model pod); without, CPU alone (the
    spec's target, else the operator's)."""
    targets = isvc.spec.autoscaling
    cpu = targets.target_cpu_utilization if targets else None
    inflight = targets.target_inflight_requests_per_pod if targets else None
    if isvc.spec.model.server is None:
        load = inflight_metric(
            settings, inflight or settings.default_target_inflight_requests_per_pod
        )
    elif inflight is not None:
        load = upstream_inflight_metric(isvc, settings, inflight)
    else:
        return [cpu_metric(cpu or settings.default_target_cpu_utilization)]
    return [load] if cpu is None else [cpu_metric(cpu), load]


def build_model_hpa(isvc: InferenceService, settings: OperatorSettings) -> Object:
    assert isvc.spec.max_replicas is not None  # build_all calls this only when autoscaled
    return hpa(
        isvc,
        name=model_tier_name(isvc),
        min_replicas=isvc.spec.min_replicas,
        max_replicas=isvc.spec.max_replicas,
        metrics=model_metrics(isvc, settings),
    )


def build_model_pdb(isvc: InferenceService) -> Object:
    return build_pdb(
        isvc, name=model_tier_name(isvc), component=MODEL, match=model_selector_labels(isvc)
    )
