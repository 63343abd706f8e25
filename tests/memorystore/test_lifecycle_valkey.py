"""The Memorystore for Valkey lifecycle through the reconciler: google-cloud-memorystore's async
client (gRPC) against the emulator (each instance a real local Redis Cluster), the real
Kubernetes client against the fake API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memoserve_operator.cache.stats import CacheStatsReader
from tests.memorystore.helpers import (
    PARENT,
    REGION,
    cache_status,
    condition,
    exists,
    recorded,
    secret,
    stored,
)
from tests.memorystore.sharded import redis_cluster
from tests.memorystore.sharded_world import (
    NETWORK,
    VALKEY,
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
from tests.operator.fake_api import NAMESPACE, FakeKube, isvc_body, key

pytestmark = [pytest.mark.kmock(cls=FakeKube), pytest.mark.slow, pytest.mark.timeout(400)]
SECRET, DEPLOYMENT = key("v1", "Secret"), key("apps/v1", "Deployment")
__all__ = ["world"]  # the fixture


def body(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return sharded_body("valkey", generation, **spec)


async def test_create_then_ready_then_an_iam_endpoint_with_the_ca(
    world: World, tmp_path: Path
) -> None:
    world.store(body())
    outcome = await world.reconcile()
    assert outcome.retry_after is not None
    assert condition(world.api)[:2] == ("False", "CacheCreating")
    assert "Memorystore for Valkey, 3 shards, 0 replicas per shard" in condition(world.api)[2]
    status = cache_status(world.api)
    assert status["operation"].startswith(f"{PARENT}/operations/")
    assert (status["engine"], status["shards"], status["state"]) == ("valkey", 3, "CREATING")
    assert not exists(world.api, DEPLOYMENT, "iris")  # held until there is an endpoint
    # Recorded before the create call: a killed operator finds it again.
    assert json.loads(str(recorded(world.api))) == {
        "name": VALKEY, "deletionPolicy": "Delete", "engine": "valkey",
    }  # fmt: skip
    await world.converge(lambda: cache_ready(world), within=120)
    assert world.emulator.calls("CreateInstance") == 1
    assert condition(world.api)[1] == "ValkeyReady"
    created = resource(world.emulator, VALKEY)
    assert created.authorization_mode.name == "IAM_AUTH"
    assert created.transit_encryption_mode.name == "SERVER_AUTHENTICATION"
    assert [(c.network, c.project_id) for c in created.psc_auto_connections] == [
        (NETWORK, "proj-1")
    ]
    assert dict(created.engine_configs) == {"maxmemory-policy": "allkeys-lru"}
    assert created.labels["memoserve-uid"] == "uid-iris"
    assert created.deletion_protection_enabled is False
    discovery = created.discovery_endpoints[0]
    found = secret(world.api)
    assert found["url"] == f"rediss://{discovery.address}:{discovery.port}/0"
    assert "password" not in found  # IAM: nothing secret
    assert found["auth"] == "iam"
    assert "BEGIN CERTIFICATE" in found["ca.crt"]
    status = cache_status(world.api)
    assert (status["engine"], status["shards"], status["replicasPerShard"]) == ("valkey", 3, 0)
    assert (status["host"], status["port"], status["state"]) == (
        discovery.address, discovery.port, "ACTIVE",
    )  # fmt: skip
    assert status["summary"] == f"ACTIVE valkey 3x1 {discovery.address}:{discovery.port}"
    assert exists(world.api, DEPLOYMENT, "iris")
    # What the pods will do works: the cluster protocol over TLS with that CA, AUTH by token.
    async with redis_cluster(
        discovery.address, discovery.port, password="ya29.a-token", ca_pem=found["ca.crt"],
        tmp_path=tmp_path,
    ) as client:  # fmt: skip
        await client.set("k", "v")
        assert await client.get("k") == b"v"


async def test_scaling_goes_out_one_field_per_update_and_keeps_the_pods(world: World) -> None:
    world.store(body())
    await world.converge(lambda: cache_ready(world), within=120)
    before = secret(world.api)
    world.store(body(2, shardCount=4, replicaCount=1))
    await world.reconcile()
    assert condition(world.api)[:2] == ("False", "CacheUpdating")
    assert cache_status(world.api)["state"] == "UPDATING"
    assert exists(world.api, SECRET, "iris-redis")  # serves on while it changes
    updates = [m for _, r, m in world.events.posted if r == "MemorystoreUpdate"]
    assert updates == [f"updating {VALKEY}: shard_count: 3 -> 4 (then replica_count)"]
    await world.converge(lambda: cache_ready(world), within=180)
    scaled = resource(world.emulator, VALKEY)
    assert (scaled.shard_count, scaled.replica_count) == (4, 1)
    assert world.emulator.calls("UpdateInstance") == 2  # one mask each: shards, then replicas
    assert secret(world.api) == before  # same discovery endpoint and CA: no roll
    status = cache_status(world.api)
    assert (status["shards"], status["replicasPerShard"]) == (4, 1)


async def test_changes_only_a_new_instance_can_have_are_reported_not_made(world: World) -> None:
    world.store(body())
    await world.converge(lambda: cache_ready(world), within=120)
    world.store(body(2, transitEncryptionMode="DISABLED"))
    await world.converge(lambda: condition(world.api)[1] == "CacheRecreateRequired")
    message = condition(world.api)[2]
    assert "transit_encryption_mode: SERVER_AUTHENTICATION -> DISABLED" in message
    assert "gcloud memorystore instances delete" in message
    assert world.health() == "Degraded"
    assert secret(world.api)["url"].startswith("rediss://")  # the old one serves on
    assert world.emulator.calls("UpdateInstance") == world.emulator.calls("DeleteInstance") == 0


async def test_an_operator_restarted_after_the_create_call_never_creates_twice(
    world: World,
) -> None:
    world.store(body())
    await world.reconcile()  # the create call went out ...
    world.restart()  # ... and the process is gone: nothing in memory survives
    await world.reconcile()
    # Found by its deterministic name (CREATING, or READY already on a slow machine).
    assert condition(world.api)[1] in ("CacheCreating", "ValkeyReady")
    world.restart()
    await world.converge(lambda: cache_ready(world), within=120)
    assert world.emulator.calls("CreateInstance") == 1


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
async def test_deleting_the_service_deletes_or_retains_the_instance(
    world: World, policy: str
) -> None:
    world.store(body(deletionPolicy=policy))
    await world.converge(lambda: cache_ready(world), within=120)
    await world.converge_release(within=60)
    assert recorded(world.api) is None
    command = "gcloud memorystore instances delete ml-iris --region us-central1"
    assert_released(world, policy, list(world.emulator.valkey.records), VALKEY, command)


async def test_an_existing_instance_is_only_read(world: World) -> None:
    world.emulator.call(create_behind(world.emulator, "valkey", "shared", shard_count=1))
    world.store(isvc_body(cache={"existingValkey": {"name": "shared"}}))
    await world.converge(lambda: cache_ready(world), within=60)
    assert condition(world.api)[1] == "ExistingValkey"
    found = secret(world.api)
    assert found["url"].startswith("redis://")  # the emulator's default: no TLS
    assert found["auth"] == "password"  # AUTH_DISABLED: nothing to send
    assert recorded(world.api) is None
    assert await world.reconciler.release(stored(world.api)) is None
    calls = world.emulator.backend.calls
    assert calls["UpdateInstance"] == calls["DeleteInstance"] == 0
    assert calls["CreateInstance"] == 1  # the test's own
    world.store(isvc_body(generation=2, cache={"existingValkey": {"name": "missing"}}))
    await world.converge(lambda: condition(world.api)[1] == "CacheNotFound")
    assert exists(world.api, SECRET, "iris-redis")  # the old endpoint stays meanwhile


async def test_an_instance_of_someone_else_is_never_adopted(world: World) -> None:
    world.emulator.call(create_behind(world.emulator, "valkey", "ml-iris", shard_count=1))
    world.store(body())
    await world.converge(lambda: condition(world.api)[1] == "CacheNotOwned")
    assert "not created by memoserve" in condition(world.api)[2]
    assert recorded(world.api) is None
    assert not exists(world.api, DEPLOYMENT, "iris")
    calls = world.emulator.backend.calls
    assert calls["UpdateInstance"] == calls["DeleteInstance"] == 0
    assert calls["CreateInstance"] == 1  # the test's own


async def test_a_refused_create_shows_what_google_said(world: World) -> None:
    world.emulator.faults.fail_next(
        "CreateInstance", "PERMISSION_DENIED", "Permission 'memorystore.instances.create' denied"
    )
    world.store(body())
    await world.reconcile()
    assert condition(world.api) == (
        "False", "PERMISSION_DENIED", "Permission 'memorystore.instances.create' denied",
    )  # fmt: skip
    assert world.health() == "Degraded"
    assert recorded(world.api) is None  # refused: nothing to clean up
    await world.converge(lambda: cache_ready(world), within=120)
    assert world.emulator.calls("CreateInstance") == 2


async def test_a_missing_service_connection_policy_says_what_to_create(kmock: Any) -> None:
    async with world_without_policies(kmock) as (world, policies):
        world.store(body())
        await world.converge(
            lambda: condition(world.api)[1] == "ServiceConnectionPolicyMissing", within=60
        )
        message = condition(world.api)[2]
        for part in (
            f"network {NETWORK}",
            "service class gcp-memorystore ",
            f"region {REGION}",
            "gcloud network-connectivity service-connection-policies create",
            "--service-class=gcp-memorystore",
            "FAILED_PRECONDITION",
        ):
            assert part in message
        assert world.health() == "Degraded"
        assert not exists(world.api, DEPLOYMENT, "iris")
        # The network team creates the policy: the operator goes on by itself.
        policies.declare(NETWORK, "gcp-memorystore", REGION)
        await world.converge(lambda: cache_ready(world), within=120)
        assert list(world.emulator.valkey.records) == [VALKEY]


async def test_moving_from_memorystore_for_redis_lets_go_of_the_old_instance_first(
    world: World,
) -> None:
    world.store(isvc_body(cache={"memorystore": {"memorySizeGb": 1}}))
    await world.converge(lambda: cache_ready(world), within=60)
    world.store(body(2))
    await world.reconcile()
    status, reason, message = condition(world.api)
    assert (status, reason) == ("False", "CacheCreating")
    assert "letting go of the previous instance" in message
    assert exists(world.api, SECRET, "iris-redis")  # the old endpoint until the new one
    await world.converge(lambda: cache_ready(world), within=120)
    assert condition(world.api)[1] == "ValkeyReady"
    assert json.loads(str(recorded(world.api)))["engine"] == "valkey"
    assert world.emulator.backend.list_instances(PARENT) == []  # deleted (Delete)
    assert list(world.emulator.valkey.records) == [VALKEY]
    assert world.emulator.calls("CreateInstance") == 2  # one of each, no more


async def test_a_create_refused_at_once_for_want_of_a_policy_is_recognised_too(
    world: World,
) -> None:
    world.emulator.faults.fail_next(
        "CreateInstance",
        "FAILED_PRECONDITION",
        "No service connection policy is associated with project: proj-1, network: default",
    )
    world.store(body())
    await world.reconcile()
    assert condition(world.api)[1] == "ServiceConnectionPolicyMissing"
    assert recorded(world.api) is None  # refused: nothing was created, nothing holds it
    await world.converge(lambda: cache_ready(world), within=120)  # retried with backoff
    assert world.emulator.calls("CreateInstance") == 2


class OneAccountTokens:
    """Stand-in for iam_token.GoogleTokens (which needs Google to impersonate): one token per
    account. The instance's nodes play Memorystore's IAM check with an ACL below: they accept
    the token of the account "with the role" only, and refuse others with WRONGPASS."""

    async def token(self, account: str | None) -> str:
        return f"token-of-{account}"


async def test_a_refused_auth_of_the_pods_account_shows_in_cache_ready(world: World) -> None:
    pods = "ranker-pods@proj-1.iam.gserviceaccount.com"
    world.stats = CacheStatsReader(interval=0, tokens=OneAccountTokens())
    world.restart()
    spec = {"cache": {"valkey": {"shardCount": 1, "replicaCount": 0,
                                 "transitEncryptionMode": "DISABLED"}},
            "serviceAccount": {"gcpServiceAccount": pods}}  # fmt: skip
    world.store(isvc_body(**spec))
    await world.converge(lambda: cache_ready(world), within=120)
    # The pods serve (so the operator reads their counts), and the cache takes the token of
    # another account only: the pods' account lacks roles/memorystore.dbConnectionUser.
    deployment = world.api.objects[DEPLOYMENT, NAMESPACE, "iris"]
    deployment["status"] = {"replicas": 1, "readyReplicas": 1}
    for node in world.emulator.valkey.records[VALKEY].nodes.processes:
        node.cli("ACL", "SETUSER", "default", "resetpass", ">token-of-someone-else")
    await world.converge(lambda: condition(world.api)[1] == "CacheAuthRefused")
    message = condition(world.api)[2]
    assert pods in message
    assert "roles/memorystore.dbConnectionUser" in message
    assert world.health() == "Degraded"
    assert cache_status(world.api)["message"] == message
    assert exists(world.api, SECRET, "iris-redis")  # the instance is fine: nothing held
