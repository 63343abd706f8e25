"""An in-process-only answer cache, for running on a laptop without Redis.

Same protocol and result semantics as the Redis cache (see ``store``): L1 hit -> HIT;
miss -> single-flight compute -> MISS (joiners HIT); read=False -> BYPASS. It never fails, so
it never reports ERROR.
"""

from __future__ import annotations

from memoserve_serving.cache.base import CacheResult
from memoserve_serving.cache.l1 import L1Cache
from memoserve_serving.cache.singleflight import SingleFlight
from memoserve_serving.cache.store import Compute
from memoserve_serving.metrics import ServingMetrics


class LocalAnswerCache:
    def __init__(self, max_bytes: int, ttl_seconds: float, metrics: ServingMetrics) -> None:
        self._values = L1Cache(max_bytes, ttl_seconds)
        self._metrics = metrics
        self._flights: SingleFlight[bytes] = SingleFlight()

    async def get_or_compute(
        self,
        key: bytes,
        compute: Compute,
        *,
        read: bool = True,
        write: bool = True,
        share: bool = True,  # one process: nothing to coordinate
    ) -> tuple[bytes, CacheResult]:
        if not read:
            value = await compute()
            if write:
                self._values.put(key, value)
            return value, CacheResult.BYPASS
        cached = self._values.get(key)
        if cached is not None:
            self._metrics.l1_hits.inc()
            return cached, CacheResult.HIT
        if not write and key not in self._flights:
            return await compute(), CacheResult.MISS
        value, joined = await self._flights.do(key, lambda: self._fill(key, compute))
        if joined:
            self._metrics.singleflight_join("local")
            return value, CacheResult.HIT
        return value, CacheResult.MISS

    async def _fill(self, key: bytes, compute: Compute) -> bytes:
        value = await compute()
        self._values.put(key, value)
        return value

    async def warm_up(self) -> bool:
        return True  # in-process: nothing to connect to

    async def close(self) -> None:
        self._values.clear()
