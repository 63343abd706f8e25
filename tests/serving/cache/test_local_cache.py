"""The in-process-only cache (no Redis): same protocol and results."""

from __future__ import annotations

import asyncio

import pytest

from memoserve_serving.cache.base import AnswerCache, CacheResult
from memoserve_serving.cache.local import LocalAnswerCache
from memoserve_serving.metrics import ServingMetrics
from tests.serving.cache.conftest import Counter


class Model:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        await asyncio.sleep(0.01)
        return b"answer %d" % self.calls


async def test_miss_then_hit_and_single_flight(metrics: ServingMetrics, counter: Counter) -> None:
    cache: AnswerCache = LocalAnswerCache(1 << 20, 60.0, metrics)
    model = Model()
    results = await asyncio.gather(*(cache.get_or_compute(b"k", model) for _ in range(5)))
    assert model.calls == 1
    assert sorted(r for _, r in results) == sorted([CacheResult.MISS] + [CacheResult.HIT] * 4)
    assert await cache.get_or_compute(b"k", model) == (b"answer 1", CacheResult.HIT)
    assert counter("memoserve_singleflight_joins", scope="local") == 4
    assert counter("memoserve_cache_l1_hits") == 1
    await cache.close()


async def test_no_cache_no_store_and_errors(metrics: ServingMetrics) -> None:
    cache = LocalAnswerCache(1 << 20, 60.0, metrics)
    model = Model()
    assert await cache.get_or_compute(b"k", model, write=False) == (b"answer 1", CacheResult.MISS)
    assert await cache.get_or_compute(b"k", model, read=False) == (b"answer 2", CacheResult.BYPASS)
    assert await cache.get_or_compute(b"k", model) == (b"answer 2", CacheResult.HIT)

    async def failing() -> bytes:
        raise RuntimeError("bad input")

    with pytest.raises(RuntimeError):
        await cache.get_or_compute(b"other", failing)
    assert await cache.get_or_compute(b"other", model) == (b"answer 3", CacheResult.MISS)


async def test_zero_bytes_still_deduplicates_but_keeps_nothing(metrics: ServingMetrics) -> None:
    cache = LocalAnswerCache(0, 60.0, metrics)
    model = Model()
    await asyncio.gather(cache.get_or_compute(b"k", model), cache.get_or_compute(b"k", model))
    assert model.calls == 1
    assert (await cache.get_or_compute(b"k", model))[1] is CacheResult.MISS
