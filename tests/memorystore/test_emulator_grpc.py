"""The emulator through google-cloud-redis's async client over gRPC (the operator's transport),
raw and behind the operator's ``MemorystoreApi``; then redis-py asyncio to what it returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.api_core import exceptions
from google.cloud import redis_v1
from google.cloud.redis_v1.services.cloud_redis.transports import CloudRedisGrpcAsyncIOTransport

from memoserve_operator.cache.memorystore.api import Instance, MemorystoreApi, MemorystoreError
from memoserve_operator.cache.memorystore.google import open_memorystore
from tests.memorystore.emulator_thread import EmulatorThread

PARENT = "projects/p/locations/europe-west4"
RedisInstance = redis_v1.Instance


@pytest.fixture
async def raw(emulator: EmulatorThread) -> AsyncIterator[redis_v1.CloudRedisAsyncClient]:
    channel = grpc.aio.insecure_channel(emulator.grpc_target)
    client = redis_v1.CloudRedisAsyncClient(
        transport=CloudRedisGrpcAsyncIOTransport(channel=channel)
    )
    yield client
    await client.transport.close()


@pytest.fixture
async def api(emulator: EmulatorThread) -> AsyncIterator[MemorystoreApi]:
    opened = await open_memorystore(emulator.grpc_target)
    yield opened
    await opened.close()


async def test_async_client_creates_a_tls_auth_instance_redis_py_can_use(
    raw: redis_v1.CloudRedisAsyncClient, tmp_path: Path
) -> None:
    operation = await raw.create_instance(
        parent=PARENT,
        instance_id="async",
        instance=RedisInstance(
            tier=RedisInstance.Tier.STANDARD_HA,
            memory_size_gb=1,
            auth_enabled=True,
            transit_encryption_mode=RedisInstance.TransitEncryptionMode.SERVER_AUTHENTICATION,
            read_replicas_mode=RedisInstance.ReadReplicasMode.READ_REPLICAS_ENABLED,
            replica_count=2,
        ),
    )
    created = await operation.result()
    assert (created.state, created.replica_count, created.location_id) == (
        RedisInstance.State.READY,
        2,
        "europe-west4-a",
    )
    assert (created.read_endpoint, created.read_endpoint_port) == (created.host, created.port)
    auth = (await raw.get_instance_auth_string(name=created.name)).auth_string
    (tmp_path / "ca.crt").write_text(created.server_ca_certs[0].cert)
    url = f"rediss://:{auth}@{created.host}:{created.port}/0"
    client = aioredis.from_url(url, ssl_ca_certs=str(tmp_path / "ca.crt"))
    try:
        assert await client.set("answer", "42")
        assert await client.get("answer") == b"42"
    finally:
        await client.aclose()
    with pytest.raises(exceptions.NotFound):
        await raw.get_instance(name=f"{PARENT}/instances/nope")


async def test_the_operators_client(api: MemorystoreApi, emulator: EmulatorThread) -> None:
    assert api.default_project is None  # emulator: no credentials, no project from them
    assert await api.get_instance(f"{PARENT}/instances/none") is None
    wanted = Instance(
        tier="BASIC",
        memory_size_gb=1,
        auth_enabled=True,
        transit_encryption_mode="SERVER_AUTHENTICATION",
        redis_configs={"maxmemory-policy": "allkeys-lru"},
        labels={"managed-by": "memoserve-operator"},
        display_name="memoserve ml/iris",
    )
    name = await api.create_instance(PARENT, "ours", wanted)
    operation = await api.get_operation(name)
    assert operation is not None
    assert not operation.done
    with pytest.raises(MemorystoreError) as refused:
        await api.create_instance(PARENT, "ours", wanted)
    assert (refused.value.code, refused.value.retryable) == ("ALREADY_EXISTS", True)
    creating = await api.get_instance(f"{PARENT}/instances/ours")
    assert creating is not None
    assert (creating.state, creating.host) == ("CREATING", "")
    emulator.call(_wait_until_done(emulator, name))
    ready = await api.get_instance(f"{PARENT}/instances/ours")
    assert ready is not None
    assert ready.state == "READY"
    assert (ready.tier, ready.tls, ready.display_name) == ("BASIC", True, "memoserve ml/iris")
    assert ready.server_ca_certs[0].startswith("-----BEGIN CERTIFICATE-----")
    assert len(await api.get_auth_string(ready.name)) > 10
    update = await api.update_instance(
        Instance(name=ready.name, memory_size_gb=3), ["memory_size_gb"]
    )
    emulator.call(_wait_until_done(emulator, update))
    resized = await api.get_instance(ready.name)
    assert resized is not None
    assert resized.memory_size_gb == 3
    emulator.faults.fail_next("GetInstanceAuthString", "PERMISSION_DENIED")
    with pytest.raises(MemorystoreError) as denied:
        await api.get_auth_string(ready.name)
    assert denied.value.code == "PERMISSION_DENIED"
    emulator.faults.fail_next_operation("delete", "INTERNAL", "disk on fire")
    deleting = await api.delete_instance(ready.name)
    emulator.call(_wait_until_done(emulator, deleting))
    failed = await api.get_operation(deleting)
    assert failed is not None
    assert (failed.done, failed.error_code) == (True, "INTERNAL")
    assert "disk on fire" in failed.error_message
    assert await api.get_operation(f"{PARENT}/operations/unknown") is None
    with pytest.raises(MemorystoreError) as invalid:
        await api.create_instance(PARENT, "-bad-", wanted)
    assert (invalid.value.code, invalid.value.retryable) == ("INVALID_ARGUMENT", False)


async def _wait_until_done(emulator: EmulatorThread, operation: str) -> None:
    """(In the emulator's loop.) Until the backend has finished ``operation``."""
    import asyncio

    # The emulator's own loop: no event to wait on.
    while not emulator.backend.operations.known[operation].done:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
