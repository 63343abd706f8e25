"""status of an InferenceService: what the operator writes and ``kubectl get`` shows.

The handlers own the values; this module owns the shape (the CRD's status schema is generated
from it). Unknown fields are ignored on read so that an older operator can read a newer status.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ConditionType(enum.StrEnum):
    READY = "Ready"
    SERVING_READY = "ServingReady"
    MODEL_READY = "ModelReady"
    CACHE_READY = "CacheReady"
    INGRESS_READY = "IngressReady"
    AUTOSCALING_READY = "AutoscalingReady"
    CANARY_READY = "CanaryReady"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class StatusModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
    )


class Condition(StatusModel):
    """A metav1.Condition: lastTransitionTime changes only when status changes."""

    type: str = Field(min_length=1, max_length=316, description="Ready, ServingReady, ...")
    status: ConditionStatus
    reason: str = Field(default="", max_length=1024, description="CamelCase, machine-readable")
    message: str = Field(default="", max_length=32768, description="for humans")
    last_transition_time: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(default=None, ge=0)


class CacheStatus(StatusModel):
    """The Redis behind the service, as the operator last saw it."""

    source: str | None = Field(default=None, description="external | memorystore | ...")
    engine: str | None = Field(default=None, description="redis | valkey | redis-cluster")
    name: str | None = Field(default=None, description="Memorystore instance name")
    host: str | None = Field(
        default=None, description="the endpoint clients connect to (a cluster's discovery one)"
    )
    port: int | None = None
    shards: int | None = Field(default=None, ge=0, description="primaries (sharded engines)")
    replicas_per_shard: int | None = Field(default=None, ge=0)
    state: str | None = Field(default=None, description="READY, CREATING, ...")
    summary: str | None = Field(
        default=None,
        description="the CACHE column: state, engine, shards x nodes per shard and endpoint, "
        'e.g. "READY valkey 3x2 10.0.0.5:6379" (cache_summary())',
    )
    operation: str | None = Field(default=None, description="pending long-running operation")
    message: str | None = None
    hit_ratio: str | None = Field(
        default=None,
        description="answers from the cache per request over the last minutes, e.g. 87% "
        "(the HIT% column); unset while unknown",
    )


class CanaryStatus(StatusModel):
    """The canary version (spec.canary) as the operator last saw it; the stable version's are
    status.readyReplicas, status.modelDigest and status.cache.hitRatio."""

    traffic_percent: int | None = Field(default=None, ge=0, le=100)
    replicas: int | None = Field(default=None, ge=0, description="canary pods")
    ready_replicas: int | None = Field(default=None, ge=0)
    replica_summary: str | None = Field(default=None, description='"ready/desired"')
    model_digest: str | None = Field(
        default=None, description="digest of the model files the canary pods loaded"
    )
    hit_ratio: str | None = Field(
        default=None, description="the canary pods' answers from the cache per request, e.g. 40%"
    )


class InferenceServiceStatus(StatusModel):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    url: str | None = Field(default=None, description="where clients send requests")
    replicas: int | None = Field(default=None, ge=0, description="pods (the scale subresource)")
    ready_replicas: int | None = Field(default=None, ge=0)
    replica_summary: str | None = Field(
        default=None, description='"ready/desired" for the REPLICAS column'
    )
    selector: str | None = Field(
        default=None, description="label selector of the pods (the scale subresource)"
    )
    cache: CacheStatus | None = None
    model_digest: str | None = Field(
        default=None, description="digest of the model files the serving pods loaded"
    )
    canary: CanaryStatus | None = Field(default=None, description="spec.canary's version")

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


def cache_summary(cache: CacheStatus) -> str:
    """The CACHE column for ``cache``: the state first (what people read at a glance), then the
    engine, SHARDSxNODES (nodes per shard: the primary and its replicas) and the endpoint, each
    left out while unknown. E.g. ``READY valkey 3x2 10.0.0.5:6379``, ``CREATING redis-cluster
    3x2``, ``EXTERNAL redis redis.example:6379``, ``OFF``."""
    parts = [cache.state or "UNKNOWN"]
    if cache.engine:
        parts.append(cache.engine)
    if cache.shards is not None:
        parts.append(f"{cache.shards}x{1 + (cache.replicas_per_shard or 0)}")
    if cache.host:
        host = f"[{cache.host}]" if ":" in cache.host else cache.host  # an IPv6 literal
        parts.append(f"{host}:{cache.port}" if cache.port is not None else host)
    return " ".join(parts)


def with_summary(cache: CacheStatus | None) -> CacheStatus | None:
    """``cache`` with its summary (re)computed from its other fields."""
    if cache is None:
        return None
    return cache.model_copy(update={"summary": cache_summary(cache)})
