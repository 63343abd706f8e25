"""spec.cache.valkey / redisCluster (and their existing* sources) read into the sharded
engines' terms (pure): the only module that knows the resource's field names for them."""

from __future__ import annotations

from typing import Any

from memoserve_contract.resource.cache import CacheSpec
from memoserve_operator.cache.sharded.api import VALKEY, ShardedInstance


def spec_of(cache: CacheSpec, engine: str) -> Any | None:
    return getattr(cache, "valkey" if engine == VALKEY else "redis_cluster", None)


def existing_of(cache: CacheSpec, engine: str) -> str | None:
    found = getattr(
        cache, "existing_valkey" if engine == VALKEY else "existing_redis_cluster", None
    )
    return None if found is None else str(found.name)


def _value(value: Any) -> str:
    return "" if value is None else str(getattr(value, "value", value))


def wish(spec: Any, engine: str) -> ShardedInstance:
    """What the spec asks for, before naming and defaults (``sharded.plan``)."""
    return ShardedInstance(
        engine=engine,
        shard_count=spec.shard_count,
        replica_count=spec.replica_count,
        node_type=_value(getattr(spec, "node_type", None)),
        engine_version=_value(getattr(spec, "engine_version", None)),
        mode=_value(getattr(spec, "mode", None)),
        configs=dict(
            getattr(spec, "engine_configs", None) or getattr(spec, "redis_configs", None) or {}
        ),
        authorization_mode=_value(spec.authorization_mode),
        transit_encryption_mode=_value(spec.transit_encryption_mode),
        network=getattr(spec, "network", None) or "",
        labels=dict(getattr(spec, "labels", None) or {}),
    )
