"""The cache under load while a cluster changes: slots migrating (MOVED, ASK), a primary killed.

Each test drives concurrent requests through a real RedisAnswerCache and checks every answer;
the cluster is this module's own (these tests move slots and kill nodes) and is mended after
each test (a killed node restarts as a replica).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import RedisServer
from memoserve_serving.cache.base import CacheResult
from memoserve_serving.cache.slots import key_slot
from memoserve_serving.cache.store import RedisAnswerCache
from tests.serving.cache.conftest import CacheFactory, Counter
from tests.support.redis_targets import Cluster

KEYS = [b"memoserve:v3:ns:0123456789abcdef:{%08x}" % i for i in range(300)]
WAIT_SECONDS = 20.0  # an upper bound for what the cluster takes, not a measured duration


@pytest.fixture(scope="module")
def cluster_of_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    # Failovers within seconds, but not for a node that is merely slow on a busy machine.
    workdir = tmp_path_factory.mktemp("fault-cluster")
    with RedisCluster(workdir, node_timeout_ms=2000) as cluster:
        yield cluster


@pytest.fixture
def fault_cluster(cluster_of_module: RedisCluster) -> Iterator[RedisCluster]:
    Cluster(cluster_of_module).reset()
    yield cluster_of_module
    for node in cluster_of_module.nodes:
        if not node.running:
            node.start()  # rejoins as a replica of whoever took over
    cluster_of_module.wait_ok()


def answer(key: bytes) -> bytes:
    return b"answer to " + key


class Load:
    """Requests from ``workers`` tasks over KEYS until stopped; every answer checked."""

    def __init__(self, cache: RedisAnswerCache, workers: int = 16) -> None:
        self.cache = cache
        self.workers = workers
        self.phase = "before"
        self.seen: list[tuple[str, bytes, CacheResult]] = []
        self.failures: list[str] = []
        self.runs: dict[bytes, int] = {}
        self._stop = asyncio.Event()

    def compute(self, key: bytes) -> Callable[[], Awaitable[bytes]]:
        async def run() -> bytes:
            self.runs[key] = self.runs.get(key, 0) + 1
            return answer(key)

        return run

    async def _worker(self, offset: int) -> None:
        index = offset
        while not self._stop.is_set():
            key = KEYS[index % len(KEYS)]
            index += self.workers
            try:
                value, result = await self.cache.get_or_compute(key, self.compute(key))
            except Exception as exc:  # a failed request: what must never happen
                self.failures.append(f"{key!r}: {exc!r}")
                continue
            if value != answer(key):
                self.failures.append(f"{key!r}: wrong answer {value!r}")
            self.seen.append((self.phase, key, result))

    async def fill(self) -> None:
        for key in KEYS:
            # A cluster just made may still answer a first command with an error (a replica
            # still syncing, say): the fill waits that out; the phases after it do not.
            for _ in range(50):
                _, result = await self.cache.get_or_compute(key, self.compute(key))
                if result is not CacheResult.ERROR:
                    break
                await asyncio.sleep(0.1)
            assert result is CacheResult.MISS or result is CacheResult.HIT, (key, result)
        await self.cache.nodes.barrier()

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Let the load run until ``done()``; fails the test if it never is."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + WAIT_SECONDS
        while not done():
            assert loop.time() < give_up, f"no {what} within {WAIT_SECONDS} s"
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def owner(cluster: RedisCluster, slot: int) -> RedisServer:
    for info in cluster.topology():
        serves = any(first <= slot <= last for first, last in info.slots)
        if info.primary and not info.failed and serves:
            return cluster.node_for_port(info.port)
    raise AssertionError(f"nobody serves slot {slot}")


async def test_slots_migrating_under_load_are_followed_without_a_failure(
    fault_cluster: RedisCluster, make_cache: CacheFactory, counter: Counter
) -> None:
    # Every answer must be a hit: a timeout would be an ERROR, and on a loaded machine (a
    # resharding moves keys while 2 vCPUs run the load and six redis-servers) 1 s is not enough.
    load = Load(await make_cache(fault_cluster.url, timeout=5.0))
    await load.fill()
    hot_slot = key_slot(KEYS[0])
    source = owner(fault_cluster, hot_slot)
    target = next(node for node in fault_cluster.primaries() if node is not source)
    async with load:
        # ASK: the hot key's slot moved by hand, its keys gone to the target, not yet final.
        await asyncio.to_thread(fault_cluster.start_migration, hot_slot, source, target)
        assert await asyncio.to_thread(fault_cluster.migrate_keys, hot_slot, source, target)
        await load.until(lambda: counter("memoserve_cache_redirects", kind="ask") > 0, "ASK")
        await asyncio.to_thread(fault_cluster.finish_migration, hot_slot, target)
        # MOVED: a resharding as an operator runs it (redis-cli --cluster reshard).
        await asyncio.to_thread(fault_cluster.reshard, target, source, 2000)
        seen = len(load.seen)
        await load.until(lambda: len(load.seen) > seen + 2000, "requests after the reshard")
    assert load.failures == []
    assert counter("memoserve_cache_redirects", kind="ask") > 0
    assert counter("memoserve_cache_redirects", kind="moved") > 0
    # The answers moved with their slots: every request was a hit, none computed again.
    assert {result for _, _, result in load.seen} == {CacheResult.HIT}
    assert set(load.runs.values()) == {1}
    assert owner(fault_cluster, hot_slot) is target


async def test_a_killed_primary_degrades_only_its_slots_and_hits_resume(
    fault_cluster: RedisCluster, make_cache: CacheFactory, counter: Counter
) -> None:
    # A killed node refuses connections at once: the timeout only guards the healthy shards,
    # generous so that a loaded test machine does not time them out (that is not a breaker's
    # fault, and would hide whether the breakers are per node).
    cache = await make_cache(fault_cluster.url, timeout=2.0, breaker_reset=0.2)
    load = Load(cache)
    await load.fill()
    for node in fault_cluster.primaries():
        node.cli("WAIT", "1", "2000")  # the answers are on the replicas too
    victim = owner(fault_cluster, key_slot(KEYS[0]))
    lost = {key for key in KEYS if owner(fault_cluster, key_slot(key)) is victim}
    async with load:
        await load.until(lambda: len(load.seen) > 500, "requests before the kill")
        load.phase = "outage"
        await asyncio.to_thread(fault_cluster.kill_primary, victim)
        load.phase = "after"

        def lost_keys_hit_again() -> bool:
            after = [(key, result) for phase, key, result in load.seen if phase == "after"]
            return lost <= {key for key, result in after if result is CacheResult.HIT}

        await load.until(lost_keys_hit_again, "hits on the failed-over shard")
    assert load.failures == []  # fail-open: every request answered, rightly
    outage = [(key, result) for phase, key, result in load.seen if phase == "outage"]
    assert any(result is CacheResult.ERROR for key, result in outage if key in lost)
    # One breaker per node: the other shards' keys kept hitting throughout.
    others = {result for _, key, result in load.seen if key not in lost}
    assert others == {CacheResult.HIT}
    assert counter("memoserve_cache_errors", kind="breaker_open") > 0
    assert {load.runs[key] for key in KEYS if key not in lost} == {1}
    # No restart: the same cache found the promoted replica (even if a node it asked had not
    # heard of the failover yet: it reads the map again until no primary in it is down).
    current = owner(fault_cluster, key_slot(KEYS[0]))
    assert current is not victim
    await load.until(
        lambda: cache.nodes.primary(KEYS[0]).client.config.port == current.port,
        "the promoted replica in the slot map",
    )


async def test_a_killed_replica_only_sends_its_reads_back_to_the_primary(
    fault_cluster: RedisCluster, make_cache: CacheFactory
) -> None:
    cache = await make_cache(fault_cluster.url, read_replicas=True, timeout=0.5, breaker_reset=0.2)
    load = Load(cache)
    await load.fill()
    for node in fault_cluster.primaries():
        node.cli("WAIT", "1", "2000")
    primary = owner(fault_cluster, key_slot(KEYS[0]))
    replica = fault_cluster.replicas_of(primary)[0]
    shard_keys = {key for key in KEYS if owner(fault_cluster, key_slot(key)) is primary}
    async with load:
        await load.until(lambda: len(load.seen) > 500, "requests before the kill")
        replica.kill()
        load.phase = "after"

        def shard_hits_again() -> bool:
            after = [(key, result) for phase, key, result in load.seen if phase == "after"]
            recent = [result for key, result in after[-300:] if key in shard_keys]
            return len(after) > 1000 and bool(recent) and set(recent) == {CacheResult.HIT}

        await load.until(shard_hits_again, "hits on the shard whose replica died")
    assert load.failures == []
    # The shard's primary still holds every answer: nothing but the reads moved.
    assert cache.nodes.reader(KEYS[0]).client.config.port == primary.port
    others = {result for _, key, result in load.seen if key not in shard_keys}
    assert others == {CacheResult.HIT}
