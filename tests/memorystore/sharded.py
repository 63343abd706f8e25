"""Shared by the Valkey and Redis Cluster emulator tests: the real async clients on one insecure
channel, and redis-py clients of what they return (keys spread over every shard)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.api_core import exceptions
from google.cloud import memorystore_v1, redis_cluster_v1
from google.cloud.memorystore_v1.services.memorystore.transports import (
    MemorystoreGrpcAsyncIOTransport,
)
from google.cloud.redis_cluster_v1.services.cloud_redis_cluster.transports import (
    CloudRedisClusterGrpcAsyncIOTransport,
)
from google.protobuf import field_mask_pb2
from redis.asyncio.cluster import RedisCluster

from memoserve_dev.memorystore_emulator.managed import ManagedBackend
from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies
from memoserve_dev.ports import accepts
from memoserve_dev.redis_cluster import SLOTS
from tests.memorystore.emulator_thread import EmulatorThread

PROJECT, REGION = "proj-1", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
NETWORK = f"projects/{PROJECT}/global/networks/default"
KEYS = 300


@asynccontextmanager
async def _api_client(target: str, client: Any, transport: Any) -> AsyncIterator[Any]:
    """A google-cloud async client over an insecure gRPC channel to the emulator."""
    opened = transport(channel=grpc.aio.insecure_channel(target))
    try:
        yield client(transport=opened)
    finally:
        await opened.close()


def valkey_client(
    target: str,
) -> AbstractAsyncContextManager[memorystore_v1.MemorystoreAsyncClient]:
    return _api_client(
        target, memorystore_v1.MemorystoreAsyncClient, MemorystoreGrpcAsyncIOTransport
    )


def cluster_client(
    target: str,
) -> AbstractAsyncContextManager[redis_cluster_v1.CloudRedisClusterAsyncClient]:
    return _api_client(
        target,
        redis_cluster_v1.CloudRedisClusterAsyncClient,
        CloudRedisClusterGrpcAsyncIOTransport,
    )


@asynccontextmanager
async def redis_cluster(
    address: str,
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_pem: str | None = None,
    tmp_path: Path | None = None,
) -> AsyncIterator[RedisCluster]:
    """redis-py's cluster client of a discovery endpoint (TLS: verified with ``ca_pem``)."""
    tls = {}
    if ca_pem is not None:
        assert tmp_path is not None
        ca = tmp_path / "ca.pem"
        ca.write_text(ca_pem)
        tls = {"ssl": True, "ssl_ca_certs": str(ca)}
    client = RedisCluster(host=address, port=port, username=username, password=password, **tls)  # type: ignore[arg-type]
    try:
        await client.initialize()
        yield client
    finally:
        await client.aclose()


async def write_keys(client: RedisCluster, prefix: str = "k") -> None:
    for index in range(KEYS):
        await client.set(f"{prefix}:{index}", str(index))


async def assert_keys(client: RedisCluster, prefix: str = "k") -> None:
    """Every key written is there, and every slot is served."""
    for index in range(KEYS):
        assert await client.get(f"{prefix}:{index}") == str(index).encode()
    slots = await client.cluster_slots()
    served = sum(last - first + 1 for first, last in slots)
    assert served == SLOTS


async def keys_per_primary(client: RedisCluster) -> list[int]:
    """DBSIZE of each primary: keys spread over all shards means no zero."""
    sizes = []
    for node in client.get_primaries():
        sizes.append(int(await client.dbsize(target_nodes=node)))  # type: ignore[arg-type]
    return sizes


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def processes_of(backend: ManagedBackend, name: str) -> list[tuple[str, int]]:
    nodes = backend.records[name].nodes
    assert nodes is not None
    return [(p.host, p.port) for p in nodes.processes]


def all_gone(addresses: list[tuple[str, int]]) -> bool:
    return not any(accepts(host, port) for host, port in addresses)


async def plain_client(address: str, port: int, password: str | None = None) -> aioredis.Redis:
    return aioredis.Redis(host=address, port=port, password=password)


async def operation_error(operation: Any) -> Any:
    """The google.rpc.Status a failed operation ends with (the async clients raise it as a
    plain GoogleAPICallError)."""
    with pytest.raises(exceptions.GoogleAPICallError) as failed:
        await operation.result()
    return failed.value.errors[0]


@contextmanager
def strict_emulator(*policies: str) -> Iterator[EmulatorThread]:
    """An emulator where only these service connection policies (NETWORK:CLASS:REGION) exist."""
    declared = ServiceConnectionPolicies(allow_any_network=False)
    for spec in policies:
        declared.declare_spec(spec)
    emulator = EmulatorThread(policies=declared).start()
    try:
        yield emulator
    finally:
        emulator.stop()
