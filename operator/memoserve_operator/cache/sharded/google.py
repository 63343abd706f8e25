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
    get: str  # get_instance | get_cluster
    create: str
    update: str
    delete: str
    get_ca: str
    message: str  # the create/update argument: instance | cluster
    id_argument: str  # instance_id | cluster_id
    paths: Mapping[str, str]  # ShardedInstance field -> update mask path
    to_proto: Callable[[ShardedInstance], Any]
    from_proto: Callable[[Any], ShardedInstance]
    ca_certs: Callable[[Any], tuple[str, ...]]


class GoogleSharded:
    """``ShardedApi`` over one async client (one gRPC channel)."""

    def __init__(self, client: Any, dialect: Dialect, project: str | None) -> None:
        self._client, self._dialect = client, dialect
        self.default_project = project

    async def close(self) -> None:
        await self._client.transport.close()

    async def get_instance(self, name: str) -> ShardedInstance | None:
        found = await grpc_client.get_or_none(self._client, self._dialect.get, name=name)
        return None if found is None else self._dialect.from_proto(found)

    async def create_instance(
        self, parent: str, instance_id: str, instance: ShardedInstance
    ) -> str:
        dialect = self._dialect
        arguments = {
            "parent": parent,
            dialect.id_argument: instance_id,
            dialect.message: dialect.to_proto(instance),
        }
        return await grpc_client.started(self._client, dialect.create, **arguments)

    async def update_instance(self, instance: ShardedInstance, fields: Sequence[str]) -> str:
        dialect = self._dialect
        paths = [dialect.paths.get(f, f) for f in fields]
        mask = field_mask_pb2.FieldMask(paths=paths)
        arguments = {"update_mask": mask, dialect.message: dialect.to_proto(instance)}
        return await grpc_client.started(self._client, dialect.update, **arguments)

    async def delete_instance(self, name: str) -> str:
        return await grpc_client.started(self._client, self._dialect.delete, name=name)

    async def get_operation(self, name: str) -> Operation | None:
        return await grpc_client.get_operation(self._client, name)

    async def get_server_ca(self, name: str) -> tuple[str, ...]:
        found = await grpc_client.call(
            self._client, self._dialect.get_ca, name=f"{name}/certificateAuthority"
        )
        return self._dialect.ca_certs(found)


def managed_ca_certs(found: Any) -> tuple[str, ...]:
    """The PEMs of a CertificateAuthority's managed server CA (the same shape in both APIs)."""
    return tuple(pem for chain in found.managed_server_ca.ca_certs for pem in chain.certificates)
