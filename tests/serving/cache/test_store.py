"""get_or_compute on a healthy Redis: results, TTL, no-cache/no-store, single-flight, locks."""

from __future__ import annotations

import asyncio

import pytest

from memoserve_contract.settings import ModelFormat, ServingSettings
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.tls import TlsFiles
from memoserve_serving.cache.base import AnswerCache, CacheResult
from memoserve_serving.cache.store import LOCK_PREFIX, RedisAnswerCache, open_answer_cache
from memoserve_serving.metrics import ServingMetrics
from tests.serving.cache.conftest import CacheFactory, Counter
from tests.support.redis_targets import RedisPeer

KEY = b"memoserve:v3:ns:digest:{0123abcd}"


def key(number: int) -> bytes:
    """Keys of different requests: each its own hash tag, as RequestKeys makes them."""
    return b"memoserve:v3:ns:digest:{%08x}" % number


class Model:
    """A compute function that counts its runs; optionally slow, optionally failing."""

    def __init__(self, value: bytes = b"answer", delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0
        self.fail: Exception | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.value


async def test_miss_then_hit_with_the_ttl_set(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url, ttl_seconds=30)
    model = Model()
    assert await cache.get_or_compute(KEY, model) == (b"answer", CacheResult.MISS)
    assert await cache.get_or_compute(KEY, model) == (b"answer", CacheResult.HIT)
    assert model.calls == 1
    assert 0 < int(redis_peer.cli("PTTL", KEY.decode())) <= 30_000
    assert redis_peer.cli("EXISTS", (LOCK_PREFIX + KEY).decode()) == "0"  # lock released


async def test_a_miss_answers_without_waiting_for_its_store(
    redis_peer: RedisPeer, make_cache: CacheFactory, counter: Counter
) -> None:
    cache = await make_cache(redis_peer.url, timeout=10.0)
    await cache.nodes.barrier()
    redis_peer.on_primaries("CLIENT", "PAUSE", "20000", "WRITE")  # reads go on, writes wait
    try:
        # No lock (share=False): the GET is a read, the store the only write.
        assert await cache.get_or_compute(KEY, Model(), share=False) == (
            b"answer",
            CacheResult.MISS,
        )
        assert redis_peer.cli("EXISTS", KEY.decode()) == "0"  # the store still waits
    finally:
        redis_peer.on_primaries("CLIENT", "UNPAUSE")
    await cache.nodes.barrier()
    assert redis_peer.cli("EXISTS", KEY.decode()) == "1"
    assert counter("memoserve_cache_errors", kind="timeout") == 0


async def test_close_waits_for_a_store_in_flight(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url)
    assert await cache.get_or_compute(KEY, Model(), share=False) == (b"answer", CacheResult.MISS)
    await cache.close()  # right away: the store has not even been written to the socket yet
    assert redis_peer.cli("GET", KEY.decode()) == "answer"


async def test_compute_errors_propagate_and_are_never_cached(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url)
    model = Model()
    model.fail = RuntimeError("model exploded")
    with pytest.raises(RuntimeError, match="exploded"):
        await cache.get_or_compute(KEY, model)
    await cache.nodes.barrier()  # the lock release was sent before this: it has run now
    assert redis_peer.cli("EXISTS", KEY.decode(), (LOCK_PREFIX + KEY).decode()) == "0"
    model.fail = None
    assert await cache.get_or_compute(KEY, model) == (b"answer", CacheResult.MISS)
    assert model.calls == 2


async def test_no_cache_skips_the_read_but_stores(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url)
    redis_peer.cli("SET", KEY.decode(), "stale")
    fresh = Model(b"fresh")
    assert await cache.get_or_compute(KEY, fresh, read=False) == (b"fresh", CacheResult.BYPASS)
    assert fresh.calls == 1
    await cache.nodes.barrier()  # the store is not awaited by the request; it has landed now
    assert redis_peer.cli("GET", KEY.decode()) == "fresh"
    assert await cache.get_or_compute(KEY, Model(b"x")) == (b"fresh", CacheResult.HIT)


async def test_no_store_reads_but_does_not_store(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url)
    model = Model()
    assert await cache.get_or_compute(KEY, model, write=False) == (b"answer", CacheResult.MISS)
    assert redis_peer.cli("EXISTS", KEY.decode()) == "0"
    bypass = await cache.get_or_compute(KEY, model, read=False, write=False)
    assert bypass == (b"answer", CacheResult.BYPASS)
    assert redis_peer.cli("EXISTS", KEY.decode()) == "0"
    redis_peer.cli("SET", KEY.decode(), "cached")
    assert await cache.get_or_compute(KEY, model, write=False) == (b"cached", CacheResult.HIT)
    assert model.calls == 2


async def test_identical_concurrent_misses_compute_once(
    redis_peer: RedisPeer, make_cache: CacheFactory, counter: Counter
) -> None:
    cache = await make_cache(redis_peer.url)
    model = Model(delay=0.05)
    results = await asyncio.gather(*(cache.get_or_compute(KEY, model) for _ in range(20)))
    assert model.calls == 1
    assert [r for _, r in results].count(CacheResult.MISS) == 1
    assert [r for _, r in results].count(CacheResult.HIT) == 19
    assert {v for v, _ in results} == {b"answer"}
    assert counter("memoserve_singleflight_joins", scope="local") == 19


async def test_different_keys_do_not_share(redis_peer: RedisPeer, make_cache: CacheFactory) -> None:
    cache = await make_cache(redis_peer.url)
    models = [Model(b"v%d" % i, delay=0.02) for i in range(5)]
    results = await asyncio.gather(*(cache.get_or_compute(key(i), m) for i, m in enumerate(models)))
    assert results == [(b"v%d" % i, CacheResult.MISS) for i in range(5)]


async def test_two_replicas_compute_once_through_the_lock(
    redis_peer: RedisPeer, make_cache: CacheFactory, counter: Counter
) -> None:
    # Each its own connections.
    replicas = [await make_cache(redis_peer.url), await make_cache(redis_peer.url)]
    model = Model(delay=0.3)
    calls = [replicas[i % 2].get_or_compute(KEY, model) for i in range(10)]
    results = await asyncio.gather(*calls)
    assert model.calls == 1
    assert [r for _, r in results].count(CacheResult.MISS) == 1
    assert {v for v, _ in results} == {b"answer"}
    assert counter("memoserve_singleflight_joins", scope="remote") == 1  # the other replica
    assert counter("memoserve_singleflight_joins", scope="local") == 8


async def test_waiting_replica_computes_itself_when_the_holder_fails(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    holder, waiter = await make_cache(redis_peer.url), await make_cache(redis_peer.url)
    failing = Model(delay=0.1)
    failing.fail = RuntimeError("holder's model failed")
    first = asyncio.ensure_future(holder.get_or_compute(KEY, failing))
    await asyncio.sleep(0.03)  # the holder has the lock now
    fallback = Model(b"from waiter")
    assert await waiter.get_or_compute(KEY, fallback) == (b"from waiter", CacheResult.MISS)
    with pytest.raises(RuntimeError):
        await first
    assert fallback.calls == 1


async def test_lock_disabled_runs_each_replica(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    replicas = [await make_cache(redis_peer.url, lock_ttl_ms=None) for _ in range(2)]
    model = Model(delay=0.1)
    await asyncio.gather(*(r.get_or_compute(KEY, model) for r in replicas))
    assert model.calls == 2


async def test_a_miss_not_worth_sharing_takes_no_lock(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    replicas = [await make_cache(redis_peer.url), await make_cache(redis_peer.url)]
    model = Model(delay=0.1)
    redis_peer.on_primaries("CONFIG", "RESETSTAT")
    results = await asyncio.gather(*(r.get_or_compute(KEY, model, share=False) for r in replicas))
    assert model.calls == 2  # each replica ran it: cheaper than waiting, by the caller's word
    assert [r for _, r in results] == [CacheResult.MISS, CacheResult.MISS]
    assert redis_peer.command_calls("EVAL") == 0  # no lock was released, so none was taken


async def test_l1_answers_repeat_hits_without_redis(
    own_redis: RedisServer, make_cache: CacheFactory, counter: Counter
) -> None:
    cache = await make_cache(own_redis.url, l1_bytes=1 << 20)
    model = Model()
    assert (await cache.get_or_compute(KEY, model))[1] is CacheResult.MISS
    own_redis.kill()
    assert await cache.get_or_compute(KEY, model) == (b"answer", CacheResult.HIT)
    assert counter("memoserve_cache_l1_hits") == 1
    assert model.calls == 1


async def test_a_cancelled_request_leaves_no_flight_or_lock_behind(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url)
    model = Model(delay=10.0)
    request = asyncio.ensure_future(cache.get_or_compute(KEY, model))
    await asyncio.sleep(0.05)  # now computing, holding the lock
    assert redis_peer.cli("EXISTS", (LOCK_PREFIX + KEY).decode()) == "1"
    request.cancel()  # the client disconnected
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.sleep(0.01)
    await cache.nodes.barrier()
    assert redis_peer.cli("EXISTS", (LOCK_PREFIX + KEY).decode()) == "0"
    assert len(cache._flights) == 0
    quick = Model(b"quick")
    assert await cache.get_or_compute(KEY, quick) == (b"quick", CacheResult.MISS)


async def test_concurrent_mixed_keys_all_get_their_own_value(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(redis_peer.url, l1_bytes=4096)
    keys = [key(i % 25) for i in range(400)]

    async def one(name: bytes) -> tuple[bytes, CacheResult]:
        async def compute() -> bytes:
            await asyncio.sleep(0.001)
            return b"value of " + name

        return await cache.get_or_compute(name, compute)

    for _ in range(2):
        results = await asyncio.gather(*(one(k) for k in keys))
        assert [v for v, _ in results] == [b"value of " + k for k in keys]
    assert {r for _, r in results} == {CacheResult.HIT}
    await cache.nodes.barrier()
    # On a cluster the 25 answers landed on every shard (not all on the one we were given).
    assert all(count > 0 for count in redis_peer.keys_per_primary())


async def test_factory_does_no_io_and_survives_an_absent_redis(
    metrics: ServingMetrics, counter: Counter
) -> None:
    settings = ServingSettings(
        model_name="m",
        model_uri="/models/m",
        model_format=ModelFormat.ONNX,
        redis_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
        redis_timeout_ms=50,
    )
    cache: AnswerCache = open_answer_cache(settings, metrics)
    assert isinstance(cache, RedisAnswerCache)
    try:
        assert not await cache.warm_up()
        for _ in range(3):
            assert await cache.get_or_compute(KEY, Model()) == (b"answer", CacheResult.ERROR)
        assert counter("memoserve_cache_errors", kind="connection") == 3
    finally:
        await cache.close()


async def test_over_tls_with_auth(
    tls_redis: RedisServer, tls_files: TlsFiles, make_cache: CacheFactory
) -> None:
    cache = await make_cache(tls_redis.url, timeout=2.0, ca_file=tls_files.ca_path)
    model = Model()
    assert await cache.get_or_compute(KEY, model) == (b"answer", CacheResult.MISS)
    assert await cache.get_or_compute(KEY, model) == (b"answer", CacheResult.HIT)
    assert tls_redis.cli("GET", KEY.decode()) == "answer"


async def test_a_value_stored_after_our_get_is_found_when_taking_the_lock(
    redis_peer: RedisPeer, make_cache: CacheFactory
) -> None:
    # The window: this request's GET missed, then another flight stored the answer and released
    # its lock. Taking the lock re-reads the key in the same round trip, so no second compute.
    cache = await make_cache(redis_peer.url)
    redis_peer.cli("SET", KEY.decode(), "stored meanwhile")
    model = Model()
    assert await cache._fill(KEY, model, redis_ok=True, share=True) == (
        b"stored meanwhile",
        CacheResult.HIT,
    )
    assert model.calls == 0
    await cache.nodes.barrier()
    assert redis_peer.cli("EXISTS", (LOCK_PREFIX + KEY).decode()) == "0"  # not left taken


@pytest.mark.parametrize("read", [True, False], ids=["lookup", "no-cache"])
async def test_an_answer_over_the_size_cap_is_served_not_stored(
    redis_peer: RedisPeer,
    make_cache: CacheFactory,
    counter: Counter,
    read: bool,
) -> None:
    cache = await make_cache(redis_peer.url, max_value_bytes=8, l1_bytes=1 << 20)
    large, small = Model(b"x" * 9), Model(b"x" * 8)
    for _ in range(2):
        assert await cache.get_or_compute(KEY, large, read=read) == (
            large.value,
            CacheResult.BYPASS,
        )
    assert large.calls == 2  # neither Redis nor the L1 kept it
    assert redis_peer.cli("EXISTS", KEY.decode()) == "0"
    assert counter("memoserve_cache_oversize") == 2
    other = b"other-key"
    await cache.get_or_compute(other, small, read=read)
    assert await cache.get_or_compute(other, small) == (small.value, CacheResult.HIT)
    assert counter("memoserve_cache_oversize") == 2
