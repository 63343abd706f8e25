"""The Deployment of serving pods."""

from __future__ import annotations

import hashlib
import json

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache import CacheSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.grpc_tls import TlsMaterial
from memoserve_operator.builders.meta import SERVING, Object, object_meta, selector_labels
from memoserve_operator.builders.pod import pod_template
from memoserve_operator.settings import OperatorSettings


def config_checksum(
    isvc: InferenceService, redis: RedisEndpoint | None, grpc_tls: TlsMaterial | None = None
) -> str:
    """A digest of what the pods load at start and never re-read: the model and the cache.

    It includes the Redis endpoint the operator writes into the ``<name>-redis`` Secret (host,
    AUTH string, CA), which the pod template does not show, so a changed Secret rolls the pods;
    likewise the gRPC TLS certificate (a renewed one is read only by new pods).
    """
    spec = isvc.spec
    # The Memorystore instance's own settings (size, replicas, configs...) reach the pods only
    # through the endpoint below: a resize must not restart every serving pod.
    model = spec.model.model_dump(mode="json", by_alias=True)
    if model["server"] is None:  # the checksums of services without one stay as they were
        del model["server"]
    material: dict[str, object] = {
        "model": model,
        "cache": _cache_material(spec.cache) if spec.cache else None,
        "cacheSource": spec.cache.source if spec.cache else None,
        "redis": (
            [redis.url, redis.password or "", redis.ca_cert or ""] if redis is not None else None
        ),
    }
    if redis is not None and redis.auth != "password":  # only then, as for grpcTls below
        material["redisAuth"] = redis.auth
    if grpc_tls is not None:  # only then: the checksum of every other service stays the same
        material["grpcTls"] = grpc_tls.cert_pem
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


# An owned instance's own settings (size, shards, replicas, configs...) reach the pods only
# through the endpoint: a resize must not restart every serving pod.
_INSTANCE_SETTINGS = frozenset({"memorystore", "valkey", "redis_cluster"})
# Fields added after services existed: left out while unset, so that an operator upgrade does
# not change (and roll) every existing Deployment.
_NEWER_FIELDS = ("readFromReplicas", "existingValkey", "existingRedisCluster")


def _cache_material(cache: CacheSpec) -> dict[str, object]:
    material: dict[str, object] = cache.model_dump(
        mode="json", by_alias=True, exclude=set(_INSTANCE_SETTINGS)
    )
    for key in _NEWER_FIELDS:
        if not material.get(key):
            material.pop(key, None)
    return material


def build_deployment(
    isvc: InferenceService,
    settings: OperatorSettings,
    redis: RedisEndpoint | None = None,
    grpc_tls: TlsMaterial | None = None,
) -> Object:
    """The one-tier serving Deployment NAME."""
    template = pod_template(isvc, settings, config_checksum(isvc, redis, grpc_tls))
    replicas = None if isvc.spec.autoscaled else isvc.spec.fixed_replicas
    return deployment(isvc, settings, template=template, replicas=replicas)


def deployment(
    isvc: InferenceService,
    settings: OperatorSettings,
    *,
    template: Object,
    replicas: int | None,
    name: str | None = None,
    component: str = SERVING,
    match: dict[str, str] | None = None,
) -> Object:
    """A Deployment of the service's pods; ``replicas`` None: an HPA owns the count."""
    spec: Object = {
        "selector": {"matchLabels": match if match is not None else selector_labels(isvc)},
        # Never below the desired count during a rollout: new pods come up (and load the
        # model) before old ones go.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "revisionHistoryLimit": 5,
        # A rollout cannot progress faster than a model loads: only call it stuck (the
        # Deployment's Progressing=False, which the Ready condition reports) after that.
        "progressDeadlineSeconds": settings.model_load_timeout_seconds + 300,
        "template": template,
    }
    if replicas is not None:
        # With an HPA the field is left out entirely, so that server-side apply never owns
        # (and never resets) the replica count the HPA sets.
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(isvc, component, name=name),
        "spec": spec,
    }
