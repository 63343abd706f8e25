"""``MemorystoreApi`` on google-cloud-redis: the async client over gRPC.

google-cloud-redis's async client works over gRPC only (its REST transport is synchronous), so
gRPC it is, against Google and against the emulator alike (``cache.grpc_client``: credentials,
deadlines, errors, operations, shared with the Valkey and Redis Cluster clients).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.cloud import redis_v1
from google.cloud.redis_v1.services.cloud_redis.transports import CloudRedisGrpcAsyncIOTransport
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from memoserve_operator.cache import grpc_client
from memoserve_operator.cache.gcp import Operation
from memoserve_operator.cache.memorystore.api import Instance

RedisInstance = redis_v1.Instance


async def open_memorystore(endpoint: str | None) -> GoogleMemorystore:
    """The real client: Google's endpoint with ADC, or an emulator's without credentials."""
    if endpoint:
        transport = CloudRedisGrpcAsyncIOTransport(channel=grpc_client.emulator_channel(endpoint))
        return GoogleMemorystore(redis_v1.CloudRedisAsyncClient(transport=transport), None)
    credentials, project = await grpc_client.default_credentials()
    client = redis_v1.CloudRedisAsyncClient(credentials=credentials, transport="grpc_asyncio")
    return GoogleMemorystore(client, project)


class GoogleMemorystore:
    """``MemorystoreApi`` over one ``CloudRedisAsyncClient`` (one gRPC channel)."""

    def __init__(self, client: redis_v1.CloudRedisAsyncClient, project: str | None) -> None:
        self._client = client
        self.default_project = project

    async def close(self) -> None:
        await self._client.transport.close()  # type: ignore[no-untyped-call]

    async def get_instance(self, name: str) -> Instance | None:
        found = await grpc_client.get_or_none(self._client, "get_instance", name=name)
        return None if found is None else from_proto(found)

    async def get_auth_string(self, name: str) -> str:
        found = await grpc_client.call(self._client, "get_instance_auth_string", name=name)
        return str(found.auth_string)

    async def create_instance(self, parent: str, instance_id: str, instance: Instance) -> str:
        return await grpc_client.started(
            self._client,
            "create_instance",
            parent=parent,
            instance_id=instance_id,
            instance=to_proto(instance),
        )

    async def update_instance(self, instance: Instance, fields: Sequence[str]) -> str:
        mask = field_mask_pb2.FieldMask(paths=list(fields))
        return await grpc_client.started(
            self._client, "update_instance", update_mask=mask, instance=to_proto(instance)
        )

    async def upgrade_instance(self, name: str, redis_version: str) -> str:
        return await grpc_client.started(
            self._client, "upgrade_instance", name=name, redis_version=redis_version
        )

    async def delete_instance(self, name: str) -> str:
        return await grpc_client.started(self._client, "delete_instance", name=name)

    async def get_operation(self, name: str) -> Operation | None:
        return await grpc_client.get_operation(self._client, name)


def to_proto(instance: Instance) -> RedisInstance:
    """A desired instance as the API takes it (defaults left unset)."""
    fields: dict[str, Any] = {
        "name": instance.name,
        "tier": getattr(RedisInstance.Tier, instance.tier),
        "memory_size_gb": instance.memory_size_gb,
        "connect_mode": getattr(RedisInstance.ConnectMode, instance.connect_mode),
        "auth_enabled": instance.auth_enabled,
        "transit_encryption_mode": getattr(
            RedisInstance.TransitEncryptionMode, instance.transit_encryption_mode
        ),
        "redis_configs": dict(instance.redis_configs),
        "labels": dict(instance.labels),
        "display_name": instance.display_name,
    }
    for key in ("redis_version", "location_id", "authorized_network"):
        if value := getattr(instance, key):
            fields[key] = value
    if instance.replica_count is not None:
        fields["replica_count"] = instance.replica_count
    if instance.read_replicas_mode:
        modes = RedisInstance.ReadReplicasMode
        fields["read_replicas_mode"] = getattr(modes, instance.read_replicas_mode)
    return RedisInstance(**fields)


def from_proto(found: RedisInstance) -> Instance:
    return Instance(
        name=found.name,
        tier=found.tier.name,
        memory_size_gb=found.memory_size_gb,
        redis_version=found.redis_version,
        location_id=found.location_id,
        authorized_network=found.authorized_network,
        connect_mode=found.connect_mode.name,
        auth_enabled=found.auth_enabled,
        transit_encryption_mode=found.transit_encryption_mode.name,
        replica_count=found.replica_count,
        read_replicas_mode=found.read_replicas_mode.name,
        redis_configs=dict(found.redis_configs),
        labels=dict(found.labels),
        display_name=found.display_name,
        state=found.state.name,
        host=found.host,
        port=found.port,
        status_message=found.status_message,
        server_ca_certs=tuple(cert.cert for cert in found.server_ca_certs),
    )
