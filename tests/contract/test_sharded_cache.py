"""spec.cache's Valkey and Redis Cluster sources, status.cache's summary and the RedisEndpoint:
table tests of what each source means for the pods."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from memoserve_contract.pod_settings import pod_env
from memoserve_contract.redis_endpoint import RedisEndpoint, external_endpoint
from memoserve_contract.resource.cache import CacheSpec
from memoserve_contract.resource.sharded_cache import (
    AuthorizationMode,
    RedisClusterNodeType,
    ValkeyMode,
    ValkeyNodeType,
)
from memoserve_contract.resource.status import CacheStatus, cache_summary, with_summary
from memoserve_contract.settings import env_var
from tests.operator.helpers import make_isvc


def test_valkey_defaults_are_a_platform_engineers() -> None:
    valkey = CacheSpec.model_validate({"valkey": {}}).valkey
    assert valkey is not None
    assert valkey.mode == ValkeyMode.CLUSTER
    assert (valkey.shard_count, valkey.shards, valkey.replica_count) == (None, 3, 1)
    assert valkey.node_type == ValkeyNodeType.HIGHMEM_MEDIUM
    assert valkey.authorization_mode == AuthorizationMode.IAM_AUTH
    assert valkey.transit_encryption_mode == "SERVER_AUTHENTICATION"
    assert valkey.engine_configs == {"maxmemory-policy": "allkeys-lru"}
    assert valkey.deletion_policy == "Delete"
    assert valkey.cluster


def test_redis_cluster_defaults() -> None:
    cluster = CacheSpec.model_validate({"redisCluster": {}}).redis_cluster
    assert cluster is not None
    assert (cluster.shard_count, cluster.replica_count) == (3, 1)
    assert cluster.node_type == RedisClusterNodeType.REDIS_HIGHMEM_MEDIUM
    assert cluster.authorization_mode == AuthorizationMode.IAM_AUTH
    assert cluster.redis_configs == {"maxmemory-policy": "allkeys-lru"}


@pytest.mark.parametrize(
    ("valkey", "shards", "cluster"),
    [
        ({}, 3, True),
        ({"shardCount": 10}, 10, True),
        ({"mode": "CLUSTER_DISABLED"}, 1, False),
        ({"mode": "CLUSTER_DISABLED", "shardCount": 1}, 1, False),
    ],
)
def test_valkey_shards(valkey: dict[str, Any], shards: int, cluster: bool) -> None:
    spec = CacheSpec.model_validate({"valkey": valkey}).valkey
    assert spec is not None
    assert (spec.shards, spec.cluster) == (shards, cluster)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("shardCount", 0),
        ("shardCount", 251),
        ("replicaCount", -1),
        ("replicaCount", 6),
        ("engineVersion", "8.0"),
        ("network", "projects/p/regions/r/subnetworks/s"),
        ("project", "P"),
    ],
)
def test_valkey_refuses_out_of_range(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=rf"valkey\.{field}"):
        CacheSpec.model_validate({"valkey": {field: value}})


@pytest.mark.parametrize("network", ["default", "projects/my-project/global/networks/vpc-1"])
def test_network_takes_a_short_or_full_name(network: str) -> None:
    spec = CacheSpec.model_validate({"redisCluster": {"network": network}}).redis_cluster
    assert spec is not None
    assert spec.network == network


@pytest.mark.parametrize("replicas", [-1, 6])
def test_redis_cluster_replicas_are_0_to_5(replicas: int) -> None:
    with pytest.raises(ValidationError, match=r"redisCluster\.replicaCount"):
        CacheSpec.model_validate({"redisCluster": {"replicaCount": replicas}})


def test_redis_cluster_has_no_labels_nor_engine_version() -> None:
    """Its API has neither: a spec naming them is refused, not silently ignored."""
    for field in ("labels", "engineVersion"):
        with pytest.raises(ValidationError, match="Extra inputs"):
            CacheSpec.model_validate({"redisCluster": {field: {}}})


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("shared", True),
        ("projects/p/locations/us-central1/instances/shared", True),
        ("projects/p/locations/us-central1/clusters/shared", False),  # a cluster's name
        ("Shared", False),
    ],
)
def test_existing_valkey_name(name: str, ok: bool) -> None:
    try:
        CacheSpec.model_validate({"existingValkey": {"name": name}})
    except ValidationError:
        assert not ok
    else:
        assert ok


# source, engine, sharded, redis_auth, auth_expected (a password), server_ca_expected
SOURCES: list[tuple[dict[str, Any], Any, Any, bool, Any, bool, bool]] = [
    ({"external": {"host": "r"}}, "external", "redis", False, "password", False, False),
    ({"memorystore": {}}, "memorystore", "redis", False, "password", True, True),
    ({"existingMemorystore": {"name": "m"}}, "existingMemorystore", "redis", False, "password",
     True, True),
    ({"valkey": {}}, "valkey", "valkey", True, "iam", False, True),
    ({"valkey": {"authorizationMode": "AUTH_DISABLED", "transitEncryptionMode": "DISABLED"}},
     "valkey", "valkey", True, "password", False, False),
    ({"redisCluster": {}}, "redisCluster", "redis-cluster", True, "iam", False, True),
    ({"redisCluster": {"transitEncryptionMode": "DISABLED"}}, "redisCluster", "redis-cluster",
     True, "iam", False, False),
    ({"existingValkey": {"name": "v"}}, "existingValkey", "valkey", True, None, False, True),
    ({"existingRedisCluster": {"name": "c"}}, "existingRedisCluster", "redis-cluster", True, None,
     False, True),
    ({"enabled": False, "valkey": {}}, None, None, False, None, False, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cache", "source", "engine", "sharded", "auth", "password", "ca"), SOURCES, ids=str
)
def test_what_each_source_means(
    cache: dict[str, Any],
    source: Any,
    engine: Any,
    sharded: bool,
    auth: Any,
    password: bool,
    ca: bool,
) -> None:
    spec = CacheSpec.model_validate(cache)
    assert spec.source == source
    assert spec.engine == engine
    assert spec.sharded is sharded
    assert spec.redis_auth == auth
    assert spec.auth_expected is password
    assert spec.server_ca_expected is ca


@pytest.mark.parametrize(
    ("cache", "auth", "replicas"),
    [
        ({"valkey": {}}, "iam", None),
        ({"valkey": {}, "readFromReplicas": True}, "iam", "true"),
        ({"redisCluster": {"authorizationMode": "AUTH_DISABLED"}}, None, None),
        ({"existingRedisCluster": {"name": "c"}, "readFromReplicas": True}, None, "true"),
        ({"memorystore": {}}, None, None),
    ],
)
def test_pod_env_of_sharded_caches(cache: dict[str, Any], auth: Any, replicas: Any) -> None:
    env = pod_env(make_isvc(cache=cache), default_drain_seconds=5)
    assert env.get(env_var("redis_auth")) == auth
    assert env.get(env_var("redis_read_replicas")) == replicas
    assert env_var("redis_password_file") not in env or "memorystore" in cache
    assert env_var("redis_password") not in env  # nothing secret is ever a plain env var


@pytest.mark.parametrize(
    ("status", "summary"),
    [
        (
            CacheStatus(state="READY", engine="valkey", shards=3, replicas_per_shard=1,
                        host="10.0.0.5", port=6379),
            "READY valkey 3x2 10.0.0.5:6379",
        ),
        (CacheStatus(state="CREATING", engine="redis-cluster", shards=5, replicas_per_shard=0),
         "CREATING redis-cluster 5x1"),
        (CacheStatus(state="READY", engine="redis", host="10.0.0.3", port=6378),
         "READY redis 10.0.0.3:6378"),
        (CacheStatus(state="EXTERNAL", engine="redis", host="fd00::1", port=6379),
         "EXTERNAL redis [fd00::1]:6379"),
        (CacheStatus(state="OFF"), "OFF"),
        (CacheStatus(engine="valkey"), "UNKNOWN valkey"),
        (CacheStatus(state="READY", shards=2), "READY 2x1"),
    ],
)  # fmt: skip
def test_cache_summary(status: CacheStatus, summary: str) -> None:
    assert cache_summary(status) == summary
    assert summary.split()[0] == (status.state or "UNKNOWN")  # the state first, always
    described = with_summary(status)
    assert described is not None
    assert described.summary == summary


def test_with_summary_replaces_a_stale_summary() -> None:
    stale = CacheStatus(state="READY", engine="valkey", summary="CREATING valkey")
    described = with_summary(stale)
    assert described is not None
    assert described.summary == "READY valkey"
    assert with_summary(None) is None


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (RedisEndpoint("10.0.0.5", 6379, tls=True, engine="valkey", auth="iam", cluster=True),
         "rediss://10.0.0.5:6379/0"),
        (RedisEndpoint("fd00::5", 6380), "redis://[fd00::5]:6380/0"),
    ],
)  # fmt: skip
def test_endpoint_url(endpoint: RedisEndpoint, url: str) -> None:
    assert endpoint.url == url


def test_an_iam_endpoint_has_no_password() -> None:
    with pytest.raises(ValueError, match="no password"):
        RedisEndpoint("10.0.0.5", 6379, password="secret", auth="iam")


def test_external_endpoint_comes_from_the_spec_only_for_external() -> None:
    endpoint = external_endpoint(make_isvc(cache={"external": {"host": "r", "tls": True}}))
    assert endpoint == RedisEndpoint("r", 6379, tls=True)
    assert external_endpoint(make_isvc(cache={"valkey": {}})) is None
