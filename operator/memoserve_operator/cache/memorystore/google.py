"""``MemorystoreApi`` on google-cloud-redis: the async client over gRPC.

google-cloud-redis 2.23's async client works over gRPC only (its REST transport is synchronous),
so gRPC it is, against Google and against the emulator alike. Credentials are Application
Default Credentials (Workload Identity on GKE); there is no fallback to anonymous access. Only
an explicit emulator endpoint (``MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT``) gets a plaintext
channel without credentials.

Every call has a deadline and no client-side retry: the operator retries on its own schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import google.auth
import grpc  # type: ignore[import-untyped]  # no stubs
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import redis_v1
from google.cloud.redis_v1.services.cloud_redis.transports import CloudRedisGrpcAsyncIOTransport
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]
from google.rpc import code_pb2  # type: ignore[import-untyped]

from memoserve_operator.cache.memorystore.api import Instance, MemorystoreError, Operation

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TIMEOUT_SECONDS = 30.0
RedisInstance = redis_v1.Instance


async def open_memorystore(endpoint: str | None) -> GoogleMemorystore:
    """The real client: Google's endpoint with ADC, or an emulator's without credentials."""
    if endpoint:
        target = endpoint.removeprefix("http://")
        channel = grpc.aio.insecure_channel(target)
        transport = CloudRedisGrpcAsyncIOTransport(channel=channel)
        return GoogleMemorystore(redis_v1.CloudRedisAsyncClient(transport=transport), None)
    try:
        # Reads files and may ask the metadata server: not on the event loop.
        credentials, project = await asyncio.to_thread(google.auth.default, scopes=SCOPES)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise MemorystoreError("UNAUTHENTICATED", f"no Google credentials: {exc}") from None
    client = redis_v1.CloudRedisAsyncClient(credentials=credentials, transport="grpc_asyncio")
    return GoogleMemorystore(client, project)


def _error(exc: Exception) -> MemorystoreError:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        status = exc.grpc_status_code
        code = status.name if status is not None else "UNKNOWN"
        return MemorystoreError(code, str(exc.message))
    if isinstance(exc, auth_exceptions.RefreshError):
        return MemorystoreError("UNAUTHENTICATED", str(exc))
    if isinstance(exc, grpc.aio.AioRpcError):
        return MemorystoreError(exc.code().name, str(exc.details()))
    if isinstance(exc, TimeoutError):
        return MemorystoreError("DEADLINE_EXCEEDED", f"no answer within {TIMEOUT_SECONDS:.0f} s")
    return MemorystoreError("UNAVAILABLE", repr(exc))  # transport errors, RetryError


_EXPECTED = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    grpc.RpcError,
    TimeoutError,
)


class GoogleMemorystore:
    """``MemorystoreApi`` over one ``CloudRedisAsyncClient`` (one gRPC channel)."""

    def __init__(self, client: redis_v1.CloudRedisAsyncClient, project: str | None) -> None:
        self._client = client
        self.default_project = project

    async def close(self) -> None:
        await self._client.transport.close()  # type: ignore[no-untyped-call]

    async def _call(self, method: str, **kwargs: Any) -> Any:
        call = getattr(self._client, method)
        try:
            return await call(**kwargs, retry=None, timeout=TIMEOUT_SECONDS)
        except _EXPECTED as exc:
            raise _error(exc) from None

    async def get_instance(self, name: str) -> Instance | None:
        try:
            found = await self._call("get_instance", name=name)
        except MemorystoreError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        return from_proto(found)

    async def get_auth_string(self, name: str) -> str:
        found = await self._call("get_instance_auth_string", name=name)
        return str(found.auth_string)

    async def create_instance(self, parent: str, instance_id: str, instance: Instance) -> str:
        operation = await self._call(
            "create_instance", parent=parent, instance_id=instance_id, instance=to_proto(instance)
        )
        return str(operation.operation.name)

    async def update_instance(self, instance: Instance, fields: Sequence[str]) -> str:
        mask = field_mask_pb2.FieldMask(paths=list(fields))
        operation = await self._call(
            "update_instance", update_mask=mask, instance=to_proto(instance)
        )
        return str(operation.operation.name)

    async def upgrade_instance(self, name: str, redis_version: str) -> str:
        operation = await self._call("upgrade_instance", name=name, redis_version=redis_version)
        return str(operation.operation.name)

    async def delete_instance(self, name: str) -> str:
        operation = await self._call("delete_instance", name=name)
        return str(operation.operation.name)

    async def get_operation(self, name: str) -> Operation | None:
        request = operations_pb2.GetOperationRequest(name=name)
        try:
            found = await self._call("get_operation", request=request)
        except MemorystoreError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        if found.HasField("error"):
            code = code_pb2.Code.Name(found.error.code)
            return Operation(found.name, True, code, found.error.message)
        return Operation(found.name, bool(found.done))


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
