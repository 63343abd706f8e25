"""Memorystore for Redis Cluster through google-cloud-redis-cluster's async client over gRPC,
and redis-py's cluster client to the real Redis Cluster behind each cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import redis_cluster_v1
from google.rpc import code_pb2  # type: ignore[import-untyped]

from tests.memorystore.emulator_thread import EmulatorThread
from tests.memorystore.sharded import (
    NETWORK,
    PARENT,
    REGION,
    all_gone,
    assert_keys,
    cluster_client,
    keys_per_primary,
    mask,
    operation_error,
    processes_of,
    redis_cluster,
    strict_emulator,
    write_keys,
)

Cluster = redis_cluster_v1.Cluster
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def cluster(**fields: object) -> Cluster:
    return Cluster(psc_configs=[redis_cluster_v1.PscConfig(network=NETWORK)], **fields)


async def test_tls_iam_cluster_serves_keys_scales_and_goes(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    async with cluster_client(emulator.grpc_target) as client:
        operation = await client.create_cluster(
            parent=PARENT,
            cluster_id="rc-1",
            cluster=cluster(
                shard_count=2,
                replica_count=1,
                authorization_mode=redis_cluster_v1.AuthorizationMode.AUTH_MODE_IAM_AUTH,
                transit_encryption_mode=(
                    redis_cluster_v1.TransitEncryptionMode.TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION
                ),
            ),
        )
        created = await operation.result()
        assert (created.state, created.shard_count, created.replica_count) == (
            Cluster.State.ACTIVE,
            2,
            1,
        )
        assert created.size_gb == 26  # 2 shards of REDIS_HIGHMEM_MEDIUM (13 GB)
        endpoint = created.discovery_endpoints[0]
        assert endpoint.psc_config.network == NETWORK
        assert created.psc_connections[0].address == endpoint.address
        done = await client.get_operation({"name": operation.operation.name})
        assert done.done
        assert done.name.startswith(f"{PARENT}/operations/")

        authority = await client.get_cluster_certificate_authority(
            name=f"{created.name}/certificateAuthority"
        )
        pem = authority.managed_server_ca.ca_certs[0].certificates[0]
        async with redis_cluster(  # IAM: AUTH default <access token>, any token
            endpoint.address,
            endpoint.port,
            username="default",
            password="ya29.token",
            ca_pem=pem,
            tmp_path=tmp_path,
        ) as redis:
            await write_keys(redis)
            assert all(size > 0 for size in await keys_per_primary(redis))

        operation = await client.update_cluster(
            cluster=Cluster(name=created.name, replica_count=0), update_mask=mask("replica_count")
        )
        assert (await operation.result()).replica_count == 0
        assert len(processes_of(emulator.cluster, created.name)) == 2
        operation = await client.update_cluster(
            cluster=Cluster(name=created.name, shard_count=3), update_mask=mask("shard_count")
        )
        updated = await operation.result()
        assert (updated.shard_count, updated.size_gb) == (3, 39)
        async with redis_cluster(
            endpoint.address, endpoint.port, ca_pem=pem, tmp_path=tmp_path
        ) as redis:
            await assert_keys(redis)
            sizes = await keys_per_primary(redis)
            assert len(sizes) == 3
            assert all(size > 0 for size in sizes)

        addresses = processes_of(emulator.cluster, created.name)
        await (await client.delete_cluster(name=created.name)).result()
        assert all_gone(addresses)
        assert [c async for c in await client.list_clusters(parent=PARENT)] == []


async def test_requests_refused_as_the_api_refuses_them(emulator: EmulatorThread) -> None:
    async with cluster_client(emulator.grpc_target) as client:
        for bad_id, bad, match in [
            ("1cluster", cluster(shard_count=1), "cluster_id"),
            ("rc-zero", cluster(shard_count=0), "shard_count must be 1 to 250"),
            ("rc-rep", cluster(shard_count=1, replica_count=3), "replica_count must be 0 to 2"),
            ("rc-psc", Cluster(shard_count=1), "psc_configs is required"),
            ("rc-net", Cluster(shard_count=1, psc_configs=[{}]), "network is required"),
            ("rc-cfg", cluster(shard_count=1, redis_configs={"save": "60 1"}), "supported"),
        ]:
            with pytest.raises(exceptions.InvalidArgument, match=match):
                await client.create_cluster(parent=PARENT, cluster_id=bad_id, cluster=bad)
        with pytest.raises(exceptions.NotFound):
            await client.get_cluster(name=f"{PARENT}/clusters/nowhere")

        operation = await client.create_cluster(
            parent=PARENT,
            cluster_id="rc-one",
            cluster=cluster(shard_count=1, redis_configs={"maxmemory-policy": "allkeys-lru"}),
        )
        with pytest.raises(exceptions.AlreadyExists):
            await client.create_cluster(
                parent=PARENT, cluster_id="rc-one", cluster=cluster(shard_count=1)
            )
        with pytest.raises(exceptions.FailedPrecondition, match="one operation at a time"):
            await client.delete_cluster(name=f"{PARENT}/clusters/rc-one")
        created = await operation.result()
        with pytest.raises(exceptions.InvalidArgument, match="one of"):
            await client.update_cluster(
                cluster=Cluster(name=created.name, shard_count=2, replica_count=1),
                update_mask=mask("shard_count", "replica_count"),
            )
        operation = await client.update_cluster(
            cluster=Cluster(name=created.name, redis_configs={"maxmemory-policy": "volatile-lru"}),
            update_mask=mask("redisConfigs"),
        )
        assert (await operation.result()).redis_configs["maxmemory-policy"] == "volatile-lru"
        nodes = emulator.cluster.records[created.name].nodes
        assert nodes is not None
        policy = nodes.processes[0].cli("CONFIG", "GET", "maxmemory-policy")
        assert policy.splitlines()[1] == "volatile-lru"


async def test_create_fails_without_a_service_connection_policy() -> None:
    with strict_emulator("default:gcp-memorystore-redis:europe-west1") as emulator:  # elsewhere
        async with cluster_client(emulator.grpc_target) as client:
            operation = await client.create_cluster(
                parent=PARENT, cluster_id="rc-psc", cluster=cluster(shard_count=1)
            )
            error = await operation_error(operation)
            assert error.code == code_pb2.FAILED_PRECONDITION
            for part in (NETWORK, "service class: gcp-memorystore-redis,", f"region: {REGION}"):
                assert part in error.message
            done = await client.get_operation({"name": operation.operation.name})
            assert done.error.code == code_pb2.FAILED_PRECONDITION

            emulator.emulator.policies.declare_spec(f"{NETWORK}:gcp-memorystore-redis:{REGION}")
            operation = await client.create_cluster(
                parent=PARENT, cluster_id="rc-psc", cluster=cluster(shard_count=1)
            )
            assert (await operation.result()).state == Cluster.State.ACTIVE


async def test_injected_faults_reach_the_cluster_api(emulator: EmulatorThread) -> None:
    emulator.faults.fail_next("CreateCluster", "PERMISSION_DENIED")
    emulator.faults.fail_next_operation("create", "RESOURCE_EXHAUSTED", "no capacity")
    async with cluster_client(emulator.grpc_target) as client:
        with pytest.raises(exceptions.PermissionDenied, match=r"redis\.clusters\.create"):
            await client.create_cluster(
                parent=PARENT, cluster_id="rc-f", cluster=cluster(shard_count=1)
            )
        operation = await client.create_cluster(
            parent=PARENT, cluster_id="rc-f", cluster=cluster(shard_count=1)
        )
        error = await operation_error(operation)
        assert (error.code, error.message) == (code_pb2.RESOURCE_EXHAUSTED, "no capacity")
        assert emulator.calls("CreateCluster") == 2
        with pytest.raises(exceptions.NotFound):
            await client.get_cluster(name=f"{PARENT}/clusters/rc-f")
