"""Memorystore for Redis Cluster (``google.cloud.redis_cluster_v1``) for ``sharded.google``:
the client, and ``ShardedInstance`` <-> ``redis_cluster_v1.Cluster``. A cluster has no labels,
engine version or mode: those stay empty both ways."""

from __future__ import annotations

from google.cloud import redis_cluster_v1
from google.cloud.redis_cluster_v1.services.cloud_redis_cluster.transports import (
    CloudRedisClusterGrpcAsyncIOTransport,
)

from memoserve_operator.cache.sharded import api
from memoserve_operator.cache.sharded import google as shared
from memoserve_operator.cache.sharded.api import ShardedInstance

Cluster = redis_cluster_v1.Cluster
NAMES = shared.Names(
    redis_cluster_v1.AuthorizationMode,
    redis_cluster_v1.TransitEncryptionMode,
    {api.IAM_AUTH: "AUTH_MODE_IAM_AUTH", api.AUTH_DISABLED: "AUTH_MODE_DISABLED"},
    {
        api.SERVER_AUTHENTICATION: "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION",
        api.DISABLED: "TRANSIT_ENCRYPTION_MODE_DISABLED",
    },
)


def to_proto(instance: ShardedInstance) -> Cluster:
    """A desired cluster as the API takes it (defaults left unset)."""
    fields = shared.common_to_proto(instance, NAMES)
    fields["redis_configs"] = dict(instance.configs)
    if instance.node_type:
        fields["node_type"] = getattr(redis_cluster_v1.NodeType, f"REDIS_{instance.node_type}")
    if instance.network:
        fields["psc_configs"] = [redis_cluster_v1.PscConfig(network=instance.network)]
    return Cluster(**fields)


def from_proto(found: Cluster) -> ShardedInstance:
    endpoints = [(e.address, e.port) for e in found.discovery_endpoints if e.address]
    networks = [c.network for c in found.psc_configs if c.network]
    return ShardedInstance(
        engine=api.REDIS_CLUSTER,
        node_type=found.node_type.name.removeprefix("REDIS_") if found.node_type else "",
        configs=dict(found.redis_configs),
        network=networks[0] if networks else "",
        discovery_address=endpoints[0][0] if endpoints else "",
        discovery_port=endpoints[0][1] if endpoints else 0,
        node_addresses=tuple(c.address for c in found.psc_connections if c.address),
        **shared.common_from_proto(found, NAMES),
    )


DIALECT = shared.Dialect(
    "cluster",
    "get_cluster_certificate_authority",
    "redis_configs",
    to_proto,
    from_proto,
    redis_cluster_v1.CloudRedisClusterAsyncClient,
    CloudRedisClusterGrpcAsyncIOTransport,
)


async def open_redis_cluster(endpoint: str | None) -> shared.GoogleSharded:
    return await shared.open_sharded(endpoint, DIALECT)
