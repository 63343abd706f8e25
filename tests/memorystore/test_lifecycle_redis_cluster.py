"""The Memorystore for Redis Cluster lifecycle through the reconciler: google-cloud-redis-cluster's
async client (gRPC) against the emulator, the real Kubernetes client against the fake API
server. What Redis Cluster does differently from Valkey: ``clusters/`` names, its own spelling
of the modes, no labels (the InferenceService's record says whose a cluster is), its own CA
call and service class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.memorystore.helpers import REGION, cache_status, condition, exists, recorded, secret
from tests.memorystore.sharded import redis_cluster
from tests.memorystore.sharded_world import (
    CLUSTER,
    NETWORK,
    create_behind,
    resource,
    sharded_body,
)
from tests.memorystore.world import (
    World,
    assert_released,
    cache_ready,
    world,
    world_without_policies,
)
from tests.operator.fake_api import FakeKube, isvc_body, key

pytestmark = [pytest.mark.kmock(cls=FakeKube), pytest.mark.slow, pytest.mark.timeout(400)]
DEPLOYMENT = key("apps/v1", "Deployment")
__all__ = ["world"]  # the fixture


def body(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return sharded_body("redisCluster", generation, **spec)


async def test_create_scale_and_delete_a_cluster(world: World, tmp_path: Path) -> None:
    world.store(body(nodeType="REDIS_SHARED_CORE_NANO"))
    await world.reconcile()
    assert condition(world.api)[:2] == ("False", "CacheCreating")
    assert json.loads(str(recorded(world.api)))["engine"] == "redisCluster"
    await world.converge(lambda: cache_ready(world), within=120)
    assert condition(world.api)[1] == "RedisClusterReady"
    created = resource(world.emulator, CLUSTER)
    assert created.authorization_mode.name == "AUTH_MODE_IAM_AUTH"
    assert created.transit_encryption_mode.name == "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"
    assert created.node_type.name == "REDIS_SHARED_CORE_NANO"
    assert [c.network for c in created.psc_configs] == [NETWORK]
    discovery = created.discovery_endpoints[0]
    found = secret(world.api)
    assert found["url"] == f"rediss://{discovery.address}:{discovery.port}/0"
    assert (found["auth"], "password" in found) == ("iam", False)
    status = cache_status(world.api)
    assert status["summary"] == f"ACTIVE redis-cluster 3x1 {discovery.address}:{discovery.port}"
    async with redis_cluster(
        discovery.address, discovery.port, password="ya29.a-token", ca_pem=found["ca.crt"],
        tmp_path=tmp_path,
    ) as client:  # fmt: skip
        await client.set("k", "v")
    # Scale out: one UpdateCluster with the mask shard_count.
    world.store(body(2, nodeType="REDIS_SHARED_CORE_NANO", shardCount=4))
    await world.reconcile()
    assert condition(world.api)[1] == "CacheUpdating"
    await world.converge(lambda: cache_ready(world), within=180)
    assert resource(world.emulator, CLUSTER).shard_count == 4
    assert world.emulator.calls("UpdateCluster") == 1
    # Deleted with the InferenceService (deletionPolicy Delete).
    delays = await world.converge_release(within=60)
    assert delays
    assert list(world.emulator.cluster.records) == []
    assert world.events.reasons()[-2:] == ["MemorystoreDelete", "MemorystoreDeleted"]


async def test_a_cluster_the_record_does_not_name_is_not_ours(world: World) -> None:
    # No labels on a cluster: one of the deterministic name that this InferenceService did not
    # record creating (someone else's, or left by an earlier one with Retain) is not adopted.
    world.emulator.call(create_behind(world.emulator, "redisCluster", "ml-iris", shard_count=1))
    world.store(body())
    await world.converge(lambda: condition(world.api)[1] == "CacheNotOwned")
    assert "no record of creating it" in condition(world.api)[2]
    assert "existingRedisCluster" in condition(world.api)[2]
    assert recorded(world.api) is None
    assert not exists(world.api, DEPLOYMENT, "iris")
    calls = world.emulator.backend.calls
    assert calls["UpdateCluster"] == calls["DeleteCluster"] == 0
    # Used as an existing cluster instead, it is read and never changed.
    world.store(isvc_body(generation=2, cache={"existingRedisCluster": {"name": "ml-iris"}}))
    await world.converge(lambda: cache_ready(world), within=60)
    assert condition(world.api)[1] == "ExistingRedisCluster"
    assert cache_status(world.api)["engine"] == "redis-cluster"
    assert calls["UpdateCluster"] == calls["DeleteCluster"] == 0


async def test_retain_leaves_the_cluster_and_names_the_command(world: World) -> None:
    world.store(body(deletionPolicy="Retain"))
    await world.converge(lambda: cache_ready(world), within=120)
    assert await world.converge_release() == []
    command = "gcloud redis clusters delete ml-iris --region us-central1"
    assert_released(world, "Retain", list(world.emulator.cluster.records), CLUSTER, command)


async def test_a_missing_service_connection_policy_names_the_redis_service_class(
    kmock: Any,
) -> None:
    async with world_without_policies(kmock) as (world, _):
        world.store(body())
        await world.converge(
            lambda: condition(world.api)[1] == "ServiceConnectionPolicyMissing", within=60
        )
        message = condition(world.api)[2]
        assert "service class gcp-memorystore-redis" in message
        assert f"region {REGION}" in message
        assert "--service-class=gcp-memorystore-redis" in message
        assert list(world.emulator.cluster.records) == []
