"""``ShardedApi`` over Google's async clients (gRPC): one class for Memorystore for Valkey
(``memorystore_v1.MemorystoreAsyncClient``) and Redis Cluster
(``redis_cluster_v1.CloudRedisClusterAsyncClient``), told apart by a ``Dialect``: the method
and argument names and the codec between ``ShardedInstance`` and the API's message
(``valkey``, ``cluster``). Deadlines, errors and operations: ``cache.grpc_client``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from memoserve_operator.cache import grpc_client
from memoserve_operator.cache.gcp import Operation
from memoserve_operator.cache.sharded.api import ShardedInstance


@dataclass(frozen=True)
class Dialect:
    """How one API names things: its resource (``instance`` | ``cluster``: the methods are
    ``get_<resource>``, ...), its CA method, its configs field, its messages and its client."""

    resource: str
    get_ca: str
    configs_path: str  # engine_configs | redis_configs
    to_proto: Callable[[ShardedInstance], Any]
    from_proto: Callable[[Any], ShardedInstance]
    client_class: Any
    transport_class: Any

    def method(self, verb: str) -> str:
        return f"{verb}_{self.resource}"


class GoogleSharded:
    """``ShardedApi`` over one async client (one gRPC channel)."""

    def __init__(self, client: Any, dialect: Dialect, project: str | None) -> None:
        self._client, self._dialect = client, dialect
        self.default_project = project

    async def close(self) -> None:
        await self._client.transport.close()

    async def get_instance(self, name: str) -> ShardedInstance | None:
        found = await grpc_client.get_or_none(self._client, self._dialect.method("get"), name=name)
        return None if found is None else self._dialect.from_proto(found)

    async def create_instance(
        self, parent: str, instance_id: str, instance: ShardedInstance
    ) -> str:
        dialect = self._dialect
        arguments = {
            "parent": parent,
            f"{dialect.resource}_id": instance_id,
            dialect.resource: dialect.to_proto(instance),
        }
        return await grpc_client.started(self._client, dialect.method("create"), **arguments)

    async def update_instance(self, instance: ShardedInstance, fields: Sequence[str]) -> str:
        dialect = self._dialect
        paths = [dialect.configs_path if f == "configs" else f for f in fields]
        mask = field_mask_pb2.FieldMask(paths=paths)
        arguments = {"update_mask": mask, dialect.resource: dialect.to_proto(instance)}
        return await grpc_client.started(self._client, dialect.method("update"), **arguments)

    async def delete_instance(self, name: str) -> str:
        return await grpc_client.started(self._client, self._dialect.method("delete"), name=name)

    async def get_operation(self, name: str) -> Operation | None:
        return await grpc_client.get_operation(self._client, name)

    async def get_server_ca(self, name: str) -> tuple[str, ...]:
        found = await grpc_client.call(
            self._client, self._dialect.get_ca, name=f"{name}/certificateAuthority"
        )
        return managed_ca_certs(found)


def managed_ca_certs(found: Any) -> tuple[str, ...]:
    """The PEMs of a CertificateAuthority's managed server CA (the same shape in both APIs)."""
    return tuple(pem for chain in found.managed_server_ca.ca_certs for pem in chain.certificates)


async def open_sharded(endpoint: str | None, dialect: Dialect) -> GoogleSharded:
    """The real client: Google's endpoint with ADC, or an emulator's without credentials."""
    if endpoint:
        transport = dialect.transport_class(channel=grpc_client.emulator_channel(endpoint))
        return GoogleSharded(dialect.client_class(transport=transport), dialect, None)
    credentials, project = await grpc_client.default_credentials()
    client = dialect.client_class(credentials=credentials, transport="grpc_asyncio")
    return GoogleSharded(client, dialect, project)


def user_name(names: Mapping[str, str], api_name: str) -> str:
    """The resource's name of an API enum value (the API's own when it has none)."""
    return next((ours for ours, theirs in names.items() if theirs == api_name), api_name)


@dataclass(frozen=True)
class Names:
    """An API's enums for the authorization and in-transit encryption modes, and its names
    for the resource's values (``IAM_AUTH`` -> ``AUTH_MODE_IAM_AUTH``, ...)."""

    auth_enum: Any
    transit_enum: Any
    auth: Mapping[str, str]
    transit: Mapping[str, str]


def common_to_proto(instance: ShardedInstance, names: Names) -> dict[str, Any]:
    """The message fields both APIs spell alike (but for the enums' names)."""
    fields: dict[str, Any] = {
        "name": instance.name,
        "shard_count": instance.shard_count,
        "authorization_mode": getattr(names.auth_enum, names.auth[instance.authorization_mode]),
        "transit_encryption_mode": getattr(
            names.transit_enum, names.transit[instance.transit_encryption_mode]
        ),
        "deletion_protection_enabled": False,  # the operator deletes per deletionPolicy
    }
    if instance.replica_count is not None:
        fields["replica_count"] = instance.replica_count
    return fields


def common_from_proto(found: Any, names: Names) -> dict[str, Any]:
    return {
        "name": found.name,
        "shard_count": found.shard_count,
        "replica_count": found.replica_count,
        "authorization_mode": user_name(names.auth, found.authorization_mode.name),
        "transit_encryption_mode": user_name(names.transit, found.transit_encryption_mode.name),
        "state": found.state.name,
    }
