"""spec.cache.valkey / redisCluster (and their existing* sources) read into the sharded
engines' terms (pure): the only module that knows the resource's fields for them
(``memoserve_contract.resource.sharded_cache``)."""

from __future__ import annotations

from memoserve_contract.resource.cache import CacheSpec
from memoserve_contract.resource.sharded_cache import RedisClusterSpec, ValkeySpec
from memoserve_operator.cache.sharded.api import VALKEY, ShardedInstance

ShardedSpec = ValkeySpec | RedisClusterSpec


def spec_of(cache: CacheSpec, engine: str) -> ShardedSpec | None:
    return cache.valkey if engine == VALKEY else cache.redis_cluster


def existing_of(cache: CacheSpec, engine: str) -> str | None:
    found = cache.existing_valkey if engine == VALKEY else cache.existing_redis_cluster
    return None if found is None else found.name


def wish(spec: ShardedSpec) -> ShardedInstance:
    """What the spec asks for, before naming and defaults (``sharded.plan``). Node types lose
    Redis Cluster's ``REDIS_`` prefix: ``ShardedInstance`` speaks one vocabulary."""
    common = {
        "shard_count": spec.shards,
        "replica_count": spec.replica_count,
        "node_type": spec.node_type.value.removeprefix("REDIS_"),
        "authorization_mode": spec.authorization_mode.value,
        "transit_encryption_mode": spec.transit_encryption_mode.value,
        "network": spec.network or "",
    }
    if isinstance(spec, ValkeySpec):
        return ShardedInstance(
            VALKEY,
            engine_version=spec.engine_version or "",
            mode=spec.mode.value,
            configs=dict(spec.engine_configs),
            labels=dict(spec.labels or {}),
            **common,  # type: ignore[arg-type]
        )
    return ShardedInstance("redisCluster", configs=dict(spec.redis_configs), **common)  # type: ignore[arg-type]
