"""Memorystore for Redis Cluster (``google.cloud.redis_cluster_v1``) for ``sharded.google``:
the client, and ``ShardedInstance`` <-> ``redis_cluster_v1.Cluster``. A cluster has no labels,
engine version or mode: those stay empty both ways."""

from __future__ import annotations

from typing import Any

from google.cloud import redis_cluster_v1
from google.cloud.redis_cluster_v1.services.cloud_redis_cluster.transports import (
    CloudRedisClusterGrpcAsyncIOTransport,
)

from memoserve_operator.cache import grpc_client
from memoserve_operator.cache.sharded.api import (
    AUTH_DISABLED,
    DISABLED,
    IAM_AUTH,
    REDIS_CLUSTER,
    SERVER_AUTHENTICATION,
    ShardedInstance,
)
from memoserve_operator.cache.sharded.google import Dialect, GoogleSharded, managed_ca_certs

Cluster = redis_cluster_v1.Cluster
AUTH = {IAM_AUTH: "AUTH_MODE_IAM_AUTH", AUTH_DISABLED: "AUTH_MODE_DISABLED"}
TRANSIT = {
    SERVER_AUTHENTICATION: "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION",
    DISABLED: "TRANSIT_ENCRYPTION_MODE_DISABLED",
}


def to_proto(instance: ShardedInstance) -> Cluster:
    """A desired cluster as the API takes it (defaults left unset)."""
    fields: dict[str, Any] = {
        "name": instance.name,
        "shard_count": instance.shard_count,
        "authorization_mode": getattr(
            redis_cluster_v1.AuthorizationMode, AUTH[instance.authorization_mode]
        ),
        "transit_encryption_mode": getattr(
            redis_cluster_v1.TransitEncryptionMode, TRANSIT[instance.transit_encryption_mode]
        ),
        "redis_configs": dict(instance.configs),
        "deletion_protection_enabled": False,  # the operator deletes per deletionPolicy
    }
    if instance.replica_count is not None:
        fields["replica_count"] = instance.replica_count
    if instance.node_type:
        fields["node_type"] = getattr(redis_cluster_v1.NodeType, f"REDIS_{instance.node_type}")
    if instance.network:
        fields["psc_configs"] = [redis_cluster_v1.PscConfig(network=instance.network)]
    return Cluster(**fields)


def from_proto(found: Cluster) -> ShardedInstance:
    auth = {v: k for k, v in AUTH.items()}.get(found.authorization_mode.name, "")
    transit = {v: k for k, v in TRANSIT.items()}.get(found.transit_encryption_mode.name, "")
    endpoints = [(e.address, e.port) for e in found.discovery_endpoints if e.address]
    networks = [c.network for c in found.psc_configs if c.network]
    return ShardedInstance(
        engine=REDIS_CLUSTER,
        name=found.name,
        shard_count=found.shard_count,
        replica_count=found.replica_count,
        node_type=found.node_type.name.removeprefix("REDIS_") if found.node_type else "",
        configs=dict(found.redis_configs),
        authorization_mode=auth or found.authorization_mode.name,
        transit_encryption_mode=transit or found.transit_encryption_mode.name,
        network=networks[0] if networks else "",
        state=found.state.name,
        discovery_address=endpoints[0][0] if endpoints else "",
        discovery_port=endpoints[0][1] if endpoints else 0,
    )


DIALECT = Dialect(
    get="get_cluster",
    create="create_cluster",
    update="update_cluster",
    delete="delete_cluster",
    get_ca="get_cluster_certificate_authority",
    message="cluster",
    id_argument="cluster_id",
    paths={"configs": "redis_configs"},
    to_proto=to_proto,
    from_proto=from_proto,
    ca_certs=managed_ca_certs,
)


async def open_redis_cluster(endpoint: str | None) -> GoogleSharded:
    """The real client: Google's endpoint with ADC, or an emulator's without credentials."""
    if endpoint:
        channel = grpc_client.emulator_channel(endpoint)
        transport = CloudRedisClusterGrpcAsyncIOTransport(channel=channel)
        client = redis_cluster_v1.CloudRedisClusterAsyncClient(transport=transport)
        return GoogleSharded(client, DIALECT, None)
    credentials, project = await grpc_client.default_credentials()
    client = redis_cluster_v1.CloudRedisClusterAsyncClient(
        credentials=credentials, transport="grpc_asyncio"
    )
    return GoogleSharded(client, DIALECT, project)
