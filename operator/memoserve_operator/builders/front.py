"""The cache front of a split service (docs/front.md): the Deployment NAME on CPU nodes running
``memoserve serve`` with its misses sent to the model tier, and its HPA on CPU.

The front is what clients reach, so it keeps the serving pods' selector and everything that
selects them (the Service NAME, the PodDisruptionBudget, the NetworkPolicy, the Ingress) stays
as for one tier. It mounts the Redis Secret and the gRPC TLS Secret; it never gets a GPU.
"""

from __future__ import annotations

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.deployment import config_checksum, deployment
from memoserve_operator.builders.env import front_env
from memoserve_operator.builders.grpc_tls import TlsMaterial
from memoserve_operator.builders.hpa import cpu_metric, hpa
from memoserve_operator.builders.meta import Object, serving_ports
from memoserve_operator.builders.pod import (
    TMP_MOUNT,
    TMP_VOLUME,
    client_mounts,
    client_volumes,
    memoserve_container,
    merged_resources,
    template,
)
from memoserve_operator.settings import OperatorSettings


def front_image(isvc: InferenceService, settings: OperatorSettings) -> str:
    """spec.image, else the operator's CPU image (the front needs no CUDA)."""
    return isvc.spec.image or settings.default_image


def front_resources(isvc: InferenceService, settings: OperatorSettings) -> Object:
    front = isvc.spec.front
    return merged_resources(settings, front.resources if front is not None else None)


def front_container(isvc: InferenceService, settings: OperatorSettings) -> Object:
    resources = front_resources(isvc, settings)
    return memoserve_container(
        isvc,
        settings,
        image=front_image(isvc, settings),
        env=front_env(isvc, settings, resources["requests"].get("cpu")),
        resources=resources,
        mounts=[TMP_MOUNT, *client_mounts(isvc)],
        ports=serving_ports(isvc),
    )


def build_front_deployment(
    isvc: InferenceService,
    settings: OperatorSettings,
    redis: RedisEndpoint | None = None,
    grpc_tls: TlsMaterial | None = None,
) -> Object:
    front = isvc.spec.front
    assert front is not None  # build_all calls this only for a split service
    pods = template(
        isvc,
        settings,
        config_checksum(isvc, redis, grpc_tls),
        main=front_container(isvc, settings),
        volumes=[TMP_VOLUME, *client_volumes(isvc)],
        gpu=False,
    )
    replicas = None if front.autoscaled else front.min_replicas
    return deployment(isvc, settings, template=pods, replicas=replicas)


def build_front_hpa(isvc: InferenceService, settings: OperatorSettings) -> Object:
    """On CPU: a front's work is hashing, Redis round trips and (de)serialising, all CPU."""
    front = isvc.spec.front
    assert front is not None  # build_all calls this only for a split service
    assert front.max_replicas is not None  # and only when autoscaled
    target = front.target_cpu_utilization or settings.default_target_cpu_utilization
    return hpa(
        isvc,
        name=isvc.name,
        min_replicas=front.min_replicas,
        max_replicas=front.max_replicas,
        metrics=[cpu_metric(target)],
    )
