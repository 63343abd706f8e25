"""Memorystore for Valkey through google-cloud-memorystore's async client over gRPC, and
redis-py to the real Redis Cluster (or primary) behind each instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import memorystore_v1
from google.rpc import code_pb2  # type: ignore[import-untyped]

from tests.memorystore.command import emulator_command
from tests.memorystore.emulator_thread import EmulatorThread
from tests.memorystore.sharded import (
    NETWORK,
    PARENT,
    PROJECT,
    REGION,
    all_gone,
    assert_keys,
    cluster_client,
    keys_per_primary,
    mask,
    operation_error,
    plain_client,
    processes_of,
    redis_cluster,
    strict_emulator,
    valkey_client,
    write_keys,
)

Instance = memorystore_v1.Instance
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def instance(**fields: object) -> Instance:
    psc = [memorystore_v1.PscAutoConnection(network=NETWORK, project_id=PROJECT)]
    return Instance(psc_auto_connections=psc, **fields)


async def test_cluster_instance_serves_keys_on_every_shard_and_scales_in_place(
    emulator: EmulatorThread,
) -> None:
    async with valkey_client(emulator.grpc_target) as client:
        operation = await client.create_instance(
            parent=PARENT,
            instance_id="vk-scale",
            instance=instance(
                shard_count=3, authorization_mode=Instance.AuthorizationMode.IAM_AUTH
            ),
        )
        assert (await client.get_instance(name=f"{PARENT}/instances/vk-scale")).state == (
            Instance.State.CREATING
        )
        created = await operation.result()
        assert (created.state, created.mode, created.shard_count) == (
            Instance.State.ACTIVE,
            Instance.Mode.CLUSTER,
            3,
        )
        endpoint = created.discovery_endpoints[0]
        assert endpoint.network == NETWORK
        connection = created.psc_auto_connections[0]
        assert (connection.ip_address, connection.port) == (endpoint.address, endpoint.port)
        done = await client.get_operation({"name": operation.operation.name})
        assert done.done
        assert not done.HasField("error")

        # IAM: any token is taken as the password of the default user.
        async with redis_cluster(endpoint.address, endpoint.port, password="ya29.token") as redis:
            await write_keys(redis)
            assert all(size > 0 for size in await keys_per_primary(redis))

        for shards in (4, 2):
            operation = await client.update_instance(
                instance=Instance(name=created.name, shard_count=shards),
                update_mask=mask("shard_count"),
            )
            updating = await client.get_instance(name=created.name)
            assert updating.state == Instance.State.UPDATING
            assert updating.state_info.update_info.target_shard_count == shards
            updated = await operation.result()
            assert (updated.state, updated.shard_count) == (Instance.State.ACTIVE, shards)
            async with redis_cluster(endpoint.address, endpoint.port) as redis:
                await assert_keys(redis)
                sizes = await keys_per_primary(redis)
                assert len(sizes) == shards
                assert all(size > 0 for size in sizes)

        operation = await client.update_instance(
            instance=Instance(name=created.name, replica_count=1), update_mask=mask("replicaCount")
        )
        assert (await operation.result()).replica_count == 1
        assert len(processes_of(emulator.valkey, created.name)) == 4
        async with redis_cluster(endpoint.address, endpoint.port) as redis:
            await assert_keys(redis)

        addresses = processes_of(emulator.valkey, created.name)
        await (await client.delete_instance(name=created.name)).result()
        assert all_gone(addresses)
        with pytest.raises(exceptions.NotFound):
            await client.get_instance(name=created.name)


async def test_tls_instance_verifies_with_the_ca_the_api_returns(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    tls = Instance.TransitEncryptionMode.SERVER_AUTHENTICATION
    # PSC asked for the current way: endpoints of connections, not psc_auto_connections.
    auto = memorystore_v1.PscAutoConnection(network="default", project_id=PROJECT)
    connection = Instance.ConnectionDetail(psc_auto_connection=auto)
    asked = Instance(
        shard_count=1,
        transit_encryption_mode=tls,
        endpoints=[Instance.InstanceEndpoint(connections=[connection])],
    )
    async with valkey_client(emulator.grpc_target) as client:
        operation = await client.create_instance(
            parent=PARENT, instance_id="vk-tls", instance=asked
        )
        created = await operation.result()
        shown = created.endpoints[0].connections[0].psc_auto_connection
        assert (shown.network, shown.port) == (NETWORK, created.discovery_endpoints[0].port)
        authority = await client.get_certificate_authority(
            name=f"{created.name}/certificateAuthority"
        )
        pem = authority.managed_server_ca.ca_certs[0].certificates[0]
        assert pem.startswith("-----BEGIN CERTIFICATE-----")
        endpoint = created.discovery_endpoints[0]
        async with redis_cluster(
            endpoint.address, endpoint.port, ca_pem=pem, tmp_path=tmp_path
        ) as redis:
            await write_keys(redis)
            await assert_keys(redis)


async def test_cluster_disabled_is_one_primary_with_replicas(emulator: EmulatorThread) -> None:
    async with valkey_client(emulator.grpc_target) as client:
        operation = await client.create_instance(
            parent=PARENT,
            instance_id="vk-single",
            instance=instance(mode=Instance.Mode.CLUSTER_DISABLED, replica_count=1),
        )
        created = await operation.result()
        assert (created.shard_count, created.replica_count) == (1, 1)
        assert created.psc_auto_connections[0].connection_type == (
            memorystore_v1.ConnectionType.CONNECTION_TYPE_PRIMARY
        )
        endpoint = created.discovery_endpoints[0]
        redis = await plain_client(endpoint.address, endpoint.port)  # AUTH disabled: none
        try:
            await redis.set("k", "v")
            assert (await redis.info("replication"))["connected_slaves"] == 1
            assert (await redis.info("cluster"))["cluster_enabled"] == 0
        finally:
            await redis.aclose()
        with pytest.raises(exceptions.InvalidArgument, match="shard_count must be 1"):
            await client.update_instance(
                instance=Instance(name=created.name, shard_count=2), update_mask=mask("shard_count")
            )


async def test_requests_refused_as_the_api_refuses_them(emulator: EmulatorThread) -> None:
    async with valkey_client(emulator.grpc_target) as client:
        for bad_id, bad, match in [
            ("Bad_ID", instance(shard_count=1), "instance_id"),
            ("vk-zero", instance(shard_count=0), "shard_count must be 1 to 250"),
            ("vk-rep", instance(shard_count=1, replica_count=6), "replica_count must be 0 to 5"),
            ("vk-dis", instance(mode=Instance.Mode.CLUSTER_DISABLED, shard_count=2), "must be 1"),
            (
                "vk-net",
                Instance(shard_count=1, psc_auto_connections=[{"project_id": PROJECT}]),
                "network is required",
            ),
        ]:
            with pytest.raises(exceptions.InvalidArgument, match=match):
                await client.create_instance(parent=PARENT, instance_id=bad_id, instance=bad)
        with pytest.raises(exceptions.NotFound):
            await client.get_instance(name=f"{PARENT}/instances/nowhere")
        with pytest.raises(exceptions.NotFound):
            await client.delete_instance(name=f"{PARENT}/instances/nowhere")

        protected = instance(shard_count=1, deletion_protection_enabled=True)
        operation = await client.create_instance(
            parent=PARENT, instance_id="vk-kept", instance=protected
        )
        with pytest.raises(exceptions.AlreadyExists):
            await client.create_instance(parent=PARENT, instance_id="vk-kept", instance=protected)
        created = await operation.result()
        with pytest.raises(exceptions.FailedPrecondition, match="deletion protection"):
            await client.delete_instance(name=created.name)
        listed = [i.name async for i in await client.list_instances(parent=PARENT)]
        assert listed == [created.name]


async def test_create_fails_without_a_service_connection_policy() -> None:
    with strict_emulator(f"default:gcp-memorystore-redis:{REGION}") as emulator:  # other class
        async with valkey_client(emulator.grpc_target) as client:
            operation = await client.create_instance(
                parent=PARENT, instance_id="vk-psc", instance=instance(shard_count=1)
            )
            error = await operation_error(operation)
            assert error.code == code_pb2.FAILED_PRECONDITION
            for part in (NETWORK, "service class: gcp-memorystore,", f"region: {REGION}"):
                assert part in error.message
            with pytest.raises(exceptions.NotFound):  # a failed create leaves nothing
                await client.get_instance(name=f"{PARENT}/instances/vk-psc")


async def test_the_command_takes_service_connection_policies() -> None:
    policy = f"default:gcp-memorystore:{REGION}"
    options = ("--no-allow-any-network", "--service-connection-policy", policy)
    with emulator_command(*options) as (_, target):
        async with valkey_client(target) as client:
            operation = await client.create_instance(
                parent=PARENT, instance_id="vk-cli", instance=instance(shard_count=1)
            )
            assert (await operation.result()).state == Instance.State.ACTIVE
        async with cluster_client(target) as clusters:  # no gcp-memorystore-redis policy
            operation = await clusters.create_cluster(
                parent=PARENT,
                cluster_id="rc-cli",
                cluster={"shard_count": 1, "psc_configs": [{"network": NETWORK}]},
            )
            assert (await operation_error(operation)).code == code_pb2.FAILED_PRECONDITION
