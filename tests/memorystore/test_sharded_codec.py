"""ShardedInstance <-> the two APIs' messages: the user-facing names map to each API's
spelling and back (no emulator: the messages themselves)."""

from __future__ import annotations

import dataclasses

import pytest
from google.cloud import memorystore_v1, redis_cluster_v1

from memoserve_operator.cache.sharded import cluster, valkey
from memoserve_operator.cache.sharded.api import REDIS_CLUSTER, VALKEY, ShardedInstance

NETWORK = "projects/proj-1/global/networks/vpc-1"
VALKEY_NAME = "projects/proj-1/locations/us-central1/instances/ml-iris"
CLUSTER_NAME = "projects/proj-1/locations/us-central1/clusters/ml-iris"


def test_valkey_message_speaks_the_valkey_api() -> None:
    wanted = ShardedInstance(
        VALKEY, VALKEY_NAME, shard_count=3, replica_count=1, node_type="HIGHMEM_MEDIUM",
        engine_version="VALKEY_8_0", mode="CLUSTER", configs={"maxmemory-policy": "allkeys-lru"},
        network=NETWORK, labels={"team": "ml"},
    )  # fmt: skip
    message = valkey.to_proto(wanted)
    assert message.authorization_mode == memorystore_v1.Instance.AuthorizationMode.IAM_AUTH
    mode = memorystore_v1.Instance.TransitEncryptionMode.SERVER_AUTHENTICATION
    assert message.transit_encryption_mode == mode
    assert [(c.network, c.project_id) for c in message.psc_auto_connections] == [
        (NETWORK, "proj-1")
    ]
    assert message.deletion_protection_enabled is False
    assert dict(message.engine_configs) == {"maxmemory-policy": "allkeys-lru"}
    message.discovery_endpoints.append(
        memorystore_v1.DiscoveryEndpoint(address="10.0.0.5", port=6379)
    )
    message.state = memorystore_v1.Instance.State.ACTIVE
    read = valkey.from_proto(message)
    assert read == dataclasses.replace(
        wanted, state="ACTIVE", discovery_address="10.0.0.5", discovery_port=6379
    )


def test_valkey_without_auth_or_tls() -> None:
    wanted = ShardedInstance(
        VALKEY, VALKEY_NAME, authorization_mode="AUTH_DISABLED", transit_encryption_mode="DISABLED"
    )
    message = valkey.to_proto(wanted)
    assert message.authorization_mode.name == "AUTH_DISABLED"
    assert message.transit_encryption_mode.name == "TRANSIT_ENCRYPTION_DISABLED"
    assert valkey.from_proto(message).transit_encryption_mode == "DISABLED"


@pytest.mark.parametrize(("auth", "tls"), [(True, True), (False, False)])
def test_redis_cluster_message_speaks_the_cluster_api(auth: bool, tls: bool) -> None:
    wanted = ShardedInstance(
        REDIS_CLUSTER, CLUSTER_NAME, shard_count=4, replica_count=2,
        node_type="HIGHMEM_MEDIUM", configs={"maxmemory-policy": "allkeys-lru"}, network=NETWORK,
        authorization_mode="IAM_AUTH" if auth else "AUTH_DISABLED",
        transit_encryption_mode="SERVER_AUTHENTICATION" if tls else "DISABLED",
    )  # fmt: skip
    message = cluster.to_proto(wanted)
    assert message.authorization_mode.name == (
        "AUTH_MODE_IAM_AUTH" if auth else "AUTH_MODE_DISABLED"
    )
    assert message.transit_encryption_mode.name == (
        "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"
        if tls
        else "TRANSIT_ENCRYPTION_MODE_DISABLED"
    )
    assert message.node_type == redis_cluster_v1.NodeType.REDIS_HIGHMEM_MEDIUM
    assert [c.network for c in message.psc_configs] == [NETWORK]
    message.discovery_endpoints.append(
        redis_cluster_v1.DiscoveryEndpoint(address="10.0.0.6", port=6379)
    )
    message.state = redis_cluster_v1.Cluster.State.ACTIVE
    assert cluster.from_proto(message) == dataclasses.replace(
        wanted, state="ACTIVE", discovery_address="10.0.0.6", discovery_port=6379
    )
