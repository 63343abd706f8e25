"""The Memorystore lifecycle through the reconciler: the real google-cloud-redis client (gRPC)
against the emulator, the real Kubernetes client against the fake API server.

``converge`` plays kopf's part: reconcile, and again after the delay the reconcile asked for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.memorystore.emulator_thread import EmulatorThread
from tests.memorystore.helpers import (
    INSTANCE,
    PARENT,
    cache_status,
    condition,
    exists,
    memorystore_body,
    recorded,
    secret,
    settings_for,
    stored,
)
from tests.memorystore.world import World, assert_released, cache_ready, world
from tests.operator.fake_api import NAMESPACE, FakeKube, isvc_body, key, writes

pytestmark = pytest.mark.kmock(cls=FakeKube)

SECRET, DEPLOYMENT = key("v1", "Secret"), key("apps/v1", "Deployment")
__all__ = ["world"]  # the fixture


async def test_create_then_ready_then_secret_and_deployment(world: World) -> None:
    world.store(memorystore_body())
    outcome = await world.reconcile()
    assert outcome.retry_after is not None
    assert condition(world.api)[:2] == ("False", "CacheCreating")
    assert cache_status(world.api)["operation"].startswith(f"{PARENT}/operations/")
    assert world.health() == "Progressing"
    assert not exists(world.api, DEPLOYMENT, "iris")
    assert not exists(world.api, SECRET, "iris-redis")
    assert json.loads(str(recorded(world.api))) == {"name": INSTANCE, "deletionPolicy": "Delete"}
    await world.converge(lambda: cache_ready(world))
    assert world.emulator.calls("CreateInstance") == 1
    assert condition(world.api)[1] == "MemorystoreReady"
    instance = world.emulator.backend.get_instance(INSTANCE)
    assert dict(instance.labels) == {
        "managed-by": "memoserve-operator",
        "memoserve-namespace": NAMESPACE,
        "memoserve-name": "iris",
        "memoserve-uid": "uid-iris",
    }
    assert dict(instance.redis_configs) == {"maxmemory-policy": "allkeys-lru"}
    found = secret(world.api)
    assert found["url"] == f"rediss://127.0.0.1:{instance.port}/0"
    assert found["password"] == world.emulator.backend.get_auth_string(INSTANCE)
    assert found["ca.crt"] == instance.server_ca_certs[0].cert
    assert cache_status(world.api) | {"operation": None} == {
        "source": "memorystore", "engine": "redis", "name": INSTANCE, "host": "127.0.0.1",
        "port": instance.port, "state": "READY", "operation": None,
        "summary": f"READY redis 127.0.0.1:{instance.port}",
    }  # fmt: skip
    pod = stored(world.api, DEPLOYMENT)["spec"]["template"]["spec"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in pod["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert refs["MEMOSERVE_REDIS_URL"] == {"name": "iris-redis", "key": "url"}
    (auth,) = [v for v in pod["volumes"] if v["name"] == "redis-auth"]  # a file, not an env var
    assert auth["secret"]["secretName"] == "iris-redis"
    assert auth["secret"]["items"] == [{"key": "password", "path": "password"}]
    # What the pods will read works: TLS with the CA from the Secret, AUTH with its password.
    ca = world.emulator.backend.workdir / "client-ca.crt"
    ca.write_text(found["ca.crt"])
    client = aioredis.from_url(found["url"], password=found["password"], ssl_ca_certs=str(ca))
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_resize_goes_out_with_an_update_mask_and_keeps_the_pods(world: World) -> None:
    world.store(memorystore_body())
    await world.converge(lambda: cache_ready(world))
    before = secret(world.api)
    world.store(
        memorystore_body(2, memorySizeGb=2, redisConfigs={"maxmemory-policy": "allkeys-lfu"})
    )
    await world.reconcile()
    assert condition(world.api)[:2] == ("False", "CacheUpdating")
    assert cache_status(world.api)["state"] == "UPDATING"
    assert exists(world.api, SECRET, "iris-redis")  # serves on while it changes
    assert [r for t, r, m in world.events.posted if "memory_size_gb: 1 -> 2" in m] == [
        "MemorystoreUpdate"
    ]
    await world.converge(lambda: cache_ready(world))
    instance = world.emulator.backend.get_instance(INSTANCE)
    assert instance.memory_size_gb == 2
    assert dict(instance.redis_configs) == {"maxmemory-policy": "allkeys-lfu"}
    assert world.emulator.calls("UpdateInstance") == 1
    assert secret(world.api) == before  # same host, port, AUTH string and CA
    world.store(memorystore_body(3, memorySizeGb=2, authEnabled=False))
    await world.converge(lambda: cache_ready(world) and "password" not in applied_secret(world))
    assert world.emulator.calls("UpdateInstance") == 2


def applied_secret(world: World) -> dict[str, Any]:
    """What the operator last applied (the fake API server merges applies: a key the operator
    drops would stay in the stored object, where a real one's server-side apply removes it)."""
    applies = [r for r in writes(world.api) if r.data and r.data.get("kind") == "Secret"]
    return dict(applies[-1].data["data"]) if applies else {}


async def test_changes_only_a_new_instance_can_have_are_reported_not_made(world: World) -> None:
    world.store(memorystore_body())
    await world.converge(lambda: cache_ready(world))
    port = world.emulator.backend.get_instance(INSTANCE).port
    world.store(memorystore_body(2, tier="STANDARD_HA", memorySizeGb=2))
    await world.converge(lambda: condition(world.api)[1] == "CacheRecreateRequired")
    status, _, message = condition(world.api)
    assert status == "False"
    assert "tier: BASIC -> STANDARD_HA" in message
    assert "keeps serving" in message
    assert world.health() == "Degraded"
    assert secret(world.api)["url"].endswith(f":{port}/0")  # the old instance serves on
    assert world.emulator.calls("DeleteInstance") == world.emulator.calls("CreateInstance") - 1 == 0
    checksum = _checksum(world)
    # Someone deletes the old instance: the operator creates one as the spec says.
    world.emulator.call(_delete(world.emulator))
    await world.converge(lambda: cache_ready(world), within=15)
    assert world.emulator.backend.get_instance(INSTANCE).tier.name == "STANDARD_HA"
    assert not secret(world.api)["url"].endswith(f":{port}/0")
    assert _checksum(world) != checksum  # same spec, new endpoint: the pods roll


def _checksum(world: World) -> str:
    template = stored(world.api, DEPLOYMENT)["spec"]["template"]
    return str(template["metadata"]["annotations"]["serving.memoserve.dev/config-checksum"])


async def _delete(emulator: EmulatorThread) -> None:
    """(In the emulator's loop.) Delete the instance once the resize going on is done."""
    from memoserve_dev.memorystore_emulator.faults import ApiError

    while True:
        try:
            emulator.backend.delete_instance(INSTANCE)
            return
        except ApiError:
            await asyncio.sleep(0.02)


async def test_an_operator_restarted_mid_create_never_creates_twice(world: World) -> None:
    world.store(memorystore_body())
    await world.reconcile()
    world.restart()
    await world.reconcile()
    # Found by its deterministic name (CREATING, or READY already on a slow machine).
    assert condition(world.api)[1] in ("CacheCreating", "MemorystoreReady")
    world.restart()
    await world.converge(lambda: cache_ready(world))
    assert world.emulator.calls("CreateInstance") == 1


async def test_an_instance_of_someone_else_is_never_adopted(world: World) -> None:
    world.emulator.call(_create(world.emulator, "ml-iris", labels={"team": "other"}))
    world.store(memorystore_body())
    await world.converge(lambda: condition(world.api)[1] == "CacheNotOwned")
    assert "not created by memoserve" in condition(world.api)[2]
    assert world.health() == "Degraded"
    assert recorded(world.api) is None  # nothing to clean up: it is not ours
    assert not exists(world.api, DEPLOYMENT, "iris")
    calls = world.emulator.backend.calls
    assert calls["UpdateInstance"] == calls["DeleteInstance"] == 0
    assert calls["CreateInstance"] == 1  # the test's own


async def _create(emulator: EmulatorThread, instance_id: str, **fields: Any) -> None:
    from google.cloud import redis_v1

    spec = {"tier": redis_v1.Instance.Tier.BASIC, "memory_size_gb": 1} | fields
    operation = emulator.backend.create_instance(PARENT, instance_id, redis_v1.Instance(**spec))
    # The emulator's own loop: no event to wait on.
    while not emulator.backend.operations.known[operation.name].done:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def test_an_existing_instance_is_only_read(world: World) -> None:
    world.emulator.call(_create(world.emulator, "shared", auth_enabled=True))
    world.store(isvc_body(cache={"existingMemorystore": {"name": "shared"}}))
    await world.converge(lambda: cache_ready(world))
    assert condition(world.api)[1] == "ExistingMemorystore"
    assert secret(world.api)["password"] == world.emulator.backend.get_auth_string(
        f"{PARENT}/instances/shared"
    )
    assert "ca.crt" not in secret(world.api)
    assert recorded(world.api) is None
    assert await world.reconciler.release(stored(world.api)) is None
    calls = world.emulator.backend.calls
    assert calls["UpdateInstance"] == calls["DeleteInstance"] == 0
    assert calls["CreateInstance"] == 1  # the test's own
    world.store(isvc_body(generation=2, cache={"existingMemorystore": {"name": "missing"}}))
    await world.converge(lambda: condition(world.api)[1] == "CacheNotFound")
    assert world.health() == "Degraded"
    assert exists(world.api, SECRET, "iris-redis")  # the old endpoint stays meanwhile


async def test_an_external_cache_never_asks_memorystore(world: World) -> None:
    world.store(isvc_body(cache={"external": {"host": "redis.example.com"}}))
    await world.reconcile()
    assert condition(world.api)[:2] == ("True", "ExternalRedis")
    assert sum(world.emulator.backend.calls.values()) == 0
    assert recorded(world.api) is None


@pytest.mark.parametrize(
    ("code", "verb", "health"),
    [
        ("PERMISSION_DENIED", "redis.instances.create", "Degraded"),
        ("RESOURCE_EXHAUSTED", "Quota exceeded", "Degraded"),
        ("UNAVAILABLE", "UNAVAILABLE", "Progressing"),
    ],
)
async def test_a_refused_create_is_reported_and_retried_with_backoff(
    world: World, code: str, verb: str, health: str
) -> None:
    world.emulator.faults.fail_next("CreateInstance", code, times=2)
    # Backoff long enough that the second reconcile surely comes before it is over: 2 s (0.5 s
    # was passed once by a CI machine busy with two pytest workers).
    world.settings = settings_for(world.emulator, memorystore_poll_seconds=1.0)
    world.settings = world.settings.model_copy(update={"memorystore_max_backoff_seconds": 2.0})
    world.restart()
    world.store(memorystore_body())
    first = await world.reconcile()
    status, reason, message = condition(world.api)
    assert (status, reason, verb in message) == ("False", code, True)
    assert world.health() == health
    assert first.retry_after is not None
    # Refused: nothing was created, so nothing holds the InferenceService; but a create that
    # may have gone through (no answer) keeps the record until its outcome is known.
    assert (recorded(world.api) is None) == (code != "UNAVAILABLE")
    again = await world.reconcile()  # e.g. the resync timer, before the backoff is over
    assert world.emulator.calls("CreateInstance") == 1
    assert again.retry_after is not None
    assert again.retry_after <= first.retry_after
    assert not exists(world.api, DEPLOYMENT, "iris")
    await world.converge(lambda: cache_ready(world), within=30)
    assert world.emulator.calls("CreateInstance") == 3
    assert world.events.reasons().count(code) == 1  # one Warning, not one per retry


async def test_a_failed_create_operation_is_reported_then_retried(world: World) -> None:
    world.emulator.faults.fail_next_operation("create", "INTERNAL", "no capacity in the zone")
    world.store(memorystore_body())
    await world.converge(lambda: condition(world.api)[1] == "INTERNAL")
    assert "operation failed: no capacity in the zone" in condition(world.api)[2]
    assert cache_status(world.api)["state"] == "ERROR"
    await world.converge(lambda: cache_ready(world))
    assert world.emulator.calls("CreateInstance") == 2


async def test_an_invalid_request_is_not_retried(world: World) -> None:
    world.emulator.faults.fail_next("CreateInstance", "INVALID_ARGUMENT", "bad network")
    world.store(memorystore_body())
    outcome = await world.reconcile()
    assert outcome.retry_after is None
    assert condition(world.api)[1:] == ("INVALID_ARGUMENT", "bad network")
    for _ in range(3):  # the resync timer: no new call until the spec changes
        await world.reconcile()
    assert world.emulator.calls("CreateInstance") == 1
    world.store(memorystore_body(2, memorySizeGb=2))
    await world.converge(lambda: cache_ready(world))


async def test_a_failed_update_keeps_the_instance_serving(world: World) -> None:
    world.store(memorystore_body())
    await world.converge(lambda: cache_ready(world))
    world.emulator.faults.fail_next_operation("update", "FAILED_PRECONDITION", "maintenance")
    world.store(memorystore_body(2, memorySizeGb=3))
    await world.converge(lambda: condition(world.api)[1] == "FAILED_PRECONDITION")
    assert exists(world.api, SECRET, "iris-redis")
    assert exists(world.api, DEPLOYMENT, "iris")
    assert cache_status(world.api)["host"] == "127.0.0.1"
    await world.converge(lambda: cache_ready(world))
    assert world.emulator.backend.get_instance(INSTANCE).memory_size_gb == 3


async def test_slow_creation_is_polled_with_backoff(world: World) -> None:
    world.emulator.faults.ready_delay = 60
    world.store(memorystore_body())
    delays = [(await world.reconcile()).retry_after for _ in range(6)]
    assert delays == [0.05, 0.1, 0.2, 0.3, 0.3, 0.3]
    assert condition(world.api)[1] == "CacheCreating"
    assert world.emulator.calls("CreateInstance") == 1


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
async def test_deleting_the_service_deletes_or_retains_the_instance(
    world: World, policy: str
) -> None:
    world.store(memorystore_body(deletionPolicy=policy))
    await world.converge(lambda: cache_ready(world))
    delays = []
    async with asyncio.timeout(10):
        while (delay := await world.reconciler.release(stored(world.api))) is not None:
            delays.append(delay)
            await asyncio.sleep(delay)
    assert recorded(world.api) is None
    names = [i.name for i in world.emulator.backend.list_instances(PARENT)]
    assert bool(delays) == (policy == "Delete")
    command = "gcloud redis instances delete ml-iris --region us-central1"
    assert_released(world, policy, names, INSTANCE, command)


async def test_switching_to_another_source_lets_go_of_the_instance(world: World) -> None:
    world.store(memorystore_body())
    await world.converge(lambda: cache_ready(world))
    world.store(isvc_body(generation=2, cache={"external": {"host": "redis.example.com"}}))
    await world.converge(lambda: recorded(world.api) is None)
    assert secret(world.api)["url"] == "redis://redis.example.com:6379/0"
    assert world.emulator.backend.list_instances(PARENT) == []


async def test_switching_to_existing_memorystore_keeps_the_instance(world: World) -> None:
    world.store(memorystore_body())
    await world.converge(lambda: cache_ready(world))
    world.store(isvc_body(generation=2, cache={"existingMemorystore": {"name": INSTANCE}}))
    await world.converge(lambda: recorded(world.api) is None and cache_ready(world))
    assert condition(world.api)[1] == "ExistingMemorystore"
    assert world.emulator.calls("DeleteInstance") == 0
    assert world.events.reasons()[-1] == "MemorystoreReleased"
