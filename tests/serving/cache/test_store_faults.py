"""get_or_compute when Redis dies, hangs or is full: always the right value, never an exception."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memoserve_dev.redis_server import RedisServer
from memoserve_serving.cache.base import CacheResult
from memoserve_serving.cache.breaker import BreakerState, CircuitBreaker
from memoserve_serving.cache.resp_connection import RedisReplyError
from memoserve_serving.cache.store import RedisAnswerCache
from tests.serving.cache.conftest import CacheFactory, ClientFactory, Counter


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """(A call, so that mypy does not carry a narrowed property across state changes.)"""
    return breaker.state


@pytest.fixture
def redis(own_redis: RedisServer) -> Iterator[RedisServer]:
    """own_redis, resumed at the end even if a test fails while it is paused."""
    yield own_redis
    own_redis.resume()


def key(i: int) -> bytes:
    return b"memoserve:v1:ns:d:%d" % i


async def answer(cache: RedisAnswerCache, i: int) -> tuple[bytes, CacheResult]:
    async def compute() -> bytes:
        await asyncio.sleep(0.001)
        return b"answer %d" % i

    return await cache.get_or_compute(key(i), compute)


async def test_redis_killed_and_restarted_under_load(
    redis: RedisServer, make_cache: CacheFactory, counter: Counter
) -> None:
    cache = await make_cache(redis.url, timeout=0.5, breaker_failures=3, breaker_reset=0.1)
    results: list[CacheResult] = []
    stop = asyncio.Event()

    async def client(worker: int) -> None:
        n = 0
        while not stop.is_set():
            i = (worker * 7 + n) % 40
            value, result = await answer(cache, i)
            assert value == b"answer %d" % i  # every call, whatever Redis does
            results.append(result)
            n += 1
            await asyncio.sleep(0.002)

    workers = [asyncio.ensure_future(client(w)) for w in range(16)]
    await asyncio.sleep(0.3)
    redis.kill()
    await asyncio.sleep(0.4)
    during = len(results)
    redis.start()  # empty again: misses, then hits once re-stored
    await asyncio.sleep(0.8)
    stop.set()
    await asyncio.gather(*workers)

    after = results[during:]
    assert CacheResult.ERROR in results
    assert counter("memoserve_cache_errors", kind="connection") > 0
    assert after[-50:].count(CacheResult.HIT) > 40  # hits resumed on their own
    assert state_of(cache.breaker) == BreakerState.CLOSED


async def test_hung_redis_answers_within_a_bound_and_opens_the_breaker(
    redis: RedisServer, make_cache: CacheFactory, counter: Counter
) -> None:
    cache = await make_cache(redis.url, timeout=0.05, breaker_failures=3, breaker_reset=0.5)
    assert (await answer(cache, 1))[1] is CacheResult.MISS
    await cache.client.ping()  # its store (not awaited by the request) is in
    redis.pause()

    started = time.monotonic()
    burst = await asyncio.gather(*(answer(cache, i) for i in range(20)))
    assert time.monotonic() - started < 2.0  # one 50 ms timeout for the burst, not 20
    assert burst == [(b"answer %d" % i, CacheResult.ERROR) for i in range(20)]
    assert state_of(cache.breaker) == BreakerState.OPEN
    timeouts = counter("memoserve_cache_errors", kind="timeout")
    assert timeouts == 20  # issued together, before the breaker could open

    for i in range(20):  # now nothing touches Redis
        assert await answer(cache, i) == (b"answer %d" % i, CacheResult.ERROR)
    assert counter("memoserve_cache_errors", kind="timeout") == timeouts
    assert counter("memoserve_cache_errors", kind="breaker_open") == 20

    redis.resume()
    await asyncio.sleep(0.55)  # the cool-down: the next call is the half-open probe
    deadline = time.monotonic() + 3.0
    while (await answer(cache, 1))[1] is not CacheResult.HIT:
        assert time.monotonic() < deadline, "hits did not come back"
        await asyncio.sleep(0.05)
    assert state_of(cache.breaker) == BreakerState.CLOSED


async def test_each_call_on_a_hung_redis_costs_at_most_one_timeout(
    redis: RedisServer, make_cache: CacheFactory, counter: Counter
) -> None:
    # With the breaker out of the way: the GET times out, and the request then stays away
    # from Redis (no lock, no SET), so it pays one timeout, not three.
    cache = await make_cache(redis.url, timeout=0.05, breaker_failures=100)

    async def compute() -> bytes:
        return b"v"

    await cache.client.ping()
    redis.pause()
    started = time.monotonic()
    for i in range(5):
        assert await cache.get_or_compute(key(i), compute) == (b"v", CacheResult.ERROR)
    # One timeout each: a GET that timed out is not followed by a lock SET or a value SET.
    assert counter("memoserve_cache_errors", kind="timeout") == 5
    assert time.monotonic() - started < 2.0


async def test_full_redis_is_an_error_not_an_exception(
    tmp_path: Path, make_client: ClientFactory, make_cache: CacheFactory, counter: Counter
) -> None:
    full = RedisServer(
        tmp_path / "full", config={"maxmemory": "1mb", "maxmemory-policy": "noeviction"}
    )
    full.start()
    try:
        filler = make_client(full.url, timeout=2.0)
        await filler.set(key(0), b"cached")
        refused = None
        for i in range(1000):
            try:
                await filler.set(b"ballast:%d" % i, b"x" * 50_000)
            except RedisReplyError as exc:
                refused = exc
                break
        assert refused is not None
        assert str(refused).startswith("OOM")
        cache = await make_cache(full.url, breaker_failures=1)

        async def compute() -> bytes:
            return b"computed"

        # The lock (SET NX) is refused, and a miss waits for its lock: served uncached.
        assert await cache.get_or_compute(key(1), compute) == (b"computed", CacheResult.ERROR)
        assert counter("memoserve_cache_errors", kind="error_reply") == 1
        # A store is not waited for: the answer goes out as what the lookup found, and the
        # refusal is counted when it comes.
        assert await cache.get_or_compute(key(2), compute, read=False) == (
            b"computed",
            CacheResult.BYPASS,
        )
        assert await cache.get_or_compute(key(3), compute, share=False) == (
            b"computed",
            CacheResult.MISS,
        )
        await cache.client.ping()
        assert counter("memoserve_cache_errors", kind="error_reply") == 3
        assert full.cli("EXISTS", key(2).decode(), key(3).decode()) == "0"
        # Redis answered, so the breaker stays closed and existing answers still hit.
        assert state_of(cache.breaker) == BreakerState.CLOSED
        assert await cache.get_or_compute(key(0), compute) == (b"cached", CacheResult.HIT)
    finally:
        full.stop()
