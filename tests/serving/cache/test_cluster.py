"""The cache on a real Redis Cluster: what it learns from the server, redirects, replica reads.

The cases the cache must answer the same on one primary and on a cluster are in test_store.py
(parametrised); the failures (a killed primary, slots migrating under load) in
test_cluster_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import RedisServer
from memoserve_serving.cache.base import CacheResult
from memoserve_serving.cache.nodes import Topology
from memoserve_serving.cache.slots import key_slot
from tests.serving.cache.conftest import CacheFactory, Counter
from tests.support.redis_targets import Cluster, RedisPeer


def key(number: int) -> bytes:
    return b"memoserve:v3:ns:0123456789abcdef:{%08x}" % number


class Answers:
    """compute functions that count their runs per key."""

    def __init__(self) -> None:
        self.runs: dict[bytes, int] = {}

    def __call__(self, name: bytes) -> Callable[[], Awaitable[bytes]]:
        async def compute() -> bytes:
            self.runs[name] = self.runs.get(name, 0) + 1
            await asyncio.sleep(0.001)
            return b"answer to " + name

        return compute


async def test_the_server_says_whether_it_is_a_cluster(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url)
    expected = Topology.CLUSTER if isinstance(redis_peer, Cluster) else Topology.STANDALONE
    assert cache.nodes.topology is expected


async def test_any_node_is_a_seed_even_a_replica(
    redis_cluster: RedisCluster, make_cache: CacheFactory
) -> None:
    Cluster(redis_cluster).reset()
    replica = redis_cluster.replicas_of(redis_cluster.primaries()[0])[0]
    cache = await make_cache(replica.url)
    assert cache.nodes.topology is Topology.CLUSTER
    answers = Answers()
    for _ in range(2):
        results = [await cache.get_or_compute(key(i), answers(key(i))) for i in range(30)]
        assert results == [(b"answer to " + key(i), results[i][1]) for i in range(30)]
    assert {result for _, result in results} == {CacheResult.HIT}
    assert set(answers.runs.values()) == {1}


async def test_a_cache_not_warmed_up_learns_from_the_first_moved(
    redis_cluster: RedisCluster, make_cache: CacheFactory, counter: Counter
) -> None:
    peer = Cluster(redis_cluster)
    peer.reset()
    cache = await make_cache(peer.url, warm=False)
    assert cache.nodes.topology is Topology.UNKNOWN
    answers = Answers()
    keys = [key(i) for i in range(60)]
    first = await asyncio.gather(*(cache.get_or_compute(k, answers(k)) for k in keys))
    assert {result for _, result in first} == {CacheResult.MISS}
    assert cache.nodes.topology is Topology.CLUSTER
    assert counter("memoserve_cache_redirects", kind="moved") > 0
    again = await asyncio.gather(*(cache.get_or_compute(k, answers(k)) for k in keys))
    assert again == [(b"answer to " + k, CacheResult.HIT) for k in keys]
    assert set(answers.runs.values()) == {1}
    await cache.nodes.barrier()
    assert all(count > 0 for count in peer.keys_per_primary())
    assert counter("memoserve_cache_errors", kind="error_reply") == 0


async def test_hits_read_from_replicas_when_asked(
    redis_cluster: RedisCluster, make_cache: CacheFactory, counter: Counter
) -> None:
    peer = Cluster(redis_cluster)
    peer.reset()
    writer = await make_cache(peer.url)
    reader = await make_cache(peer.url, read_replicas=True)
    answers = Answers()
    keys = [key(i) for i in range(60)]
    stored = await asyncio.gather(*(writer.get_or_compute(k, answers(k)) for k in keys))
    assert {result for _, result in stored} == {CacheResult.MISS}
    await writer.nodes.barrier()
    primaries = redis_cluster.primaries()
    for node in primaries:
        node.cli("WAIT", "1", "2000")  # on its replica too (at most 2 s)
    for node in redis_cluster.nodes:
        node.cli("CONFIG", "RESETSTAT")
    results = await asyncio.gather(*(reader.get_or_compute(k, answers(k)) for k in keys))
    # A replica that is behind only costs a round trip: the lock's re-check on the primary
    # finds the answer. Either way nothing is computed twice.
    assert [value for value, _ in results] == [b"answer to " + k for k in keys]
    assert {result for _, result in results} == {CacheResult.HIT}
    assert set(answers.runs.values()) == {1}
    replicas = [node for node in redis_cluster.nodes if node not in primaries]
    assert all(node.command_calls("GET") > 0 for node in replicas)
    assert sum(node.command_calls("GET") for node in primaries) < len(keys)
    assert counter("memoserve_cache_redirects", kind="moved") == 0


def test_keys_of_one_request_share_a_slot_and_requests_spread() -> None:
    assert len({key_slot(key(i)) for i in range(1000)}) > 900
    assert key_slot(b"lock:" + key(7)) == key_slot(key(7))


async def test_what_redis_is_gets_known_once_it_is_up(
    own_redis: RedisServer, make_cache: CacheFactory
) -> None:
    own_redis.stop()
    cache = await make_cache(own_redis.url, timeout=0.2)  # warm-up fails: Redis is away
    assert cache.nodes.topology is Topology.UNKNOWN
    assert await cache.get_or_compute(key(1), Answers()(key(1))) == (
        b"answer to " + key(1),
        CacheResult.ERROR,
    )
    own_redis.start()
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 10  # a bound for the retries, not a measured duration
    while cache.nodes.topology is Topology.UNKNOWN:  # no request needed to find out
        assert loop.time() < give_up
        await asyncio.sleep(0.05)
    assert cache.nodes.topology is Topology.STANDALONE
