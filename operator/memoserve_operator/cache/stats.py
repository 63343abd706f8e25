"""The cache counts the serving pods publish (memoserve_contract.cache_stats), read for status.

One short-lived connection per read, a short timeout, and at most one read per service every
``interval`` seconds (reconciles are triggered by every child event): a reconcile never waits
long on a Redis, and a Redis that does not answer only leaves the hit ratio as it was last read
(for ``keep`` seconds, then unknown). Only Redis the operator has the secrets of: Memorystore
(it reads the AUTH string and CA itself) and an external Redis without a password Secret (the
operator never reads a user's Secret).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

from memoserve_contract import cache_stats
from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.redis_endpoint import RedisEndpoint

log = logging.getLogger(__name__)


@dataclass
class _Seen:
    at: float  # when it was last asked (success or not)
    stats: CacheStats | None
    good_at: float  # when ``stats`` was read


class CacheStatsReader:
    def __init__(
        self,
        *,
        interval: float = 30.0,
        keep: float = 600.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._interval, self._keep, self._timeout, self._clock = interval, keep, timeout, clock
        self._seen: dict[str, _Seen] = {}

    async def read(self, namespace: str, endpoint: RedisEndpoint) -> CacheStats | None:
        """The window's counts for the service whose pods use cache namespace ``namespace``."""
        now = self._clock()
        seen = self._seen.get(namespace)
        if seen is None or now - seen.at >= self._interval:
            stats = await self._ask(namespace, endpoint, now)
            if stats is not None:
                seen = self._seen[namespace] = _Seen(now, stats, now)
            elif seen is not None:
                seen.at = now
            else:
                seen = self._seen[namespace] = _Seen(now, None, now)
        if seen.stats is not None and now - seen.good_at <= self._keep:
            return seen.stats
        return None

    def forget(self, namespace: str) -> None:
        self._seen.pop(namespace, None)

    async def _ask(self, namespace: str, endpoint: RedisEndpoint, now: float) -> CacheStats | None:
        client = redis.Redis(
            host=endpoint.host,
            port=endpoint.port,
            password=endpoint.password,
            ssl=endpoint.tls,
            ssl_ca_data=endpoint.ca_cert,
            ssl_check_hostname=False,  # Memorystore's certificates name no host
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            decode_responses=True,
        )
        try:
            async with client.pipeline(transaction=False) as pipe:
                for key in cache_stats.window_keys(namespace, now):
                    pipe.hgetall(key)
                hashes = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("cache stats of %s not read from %s: %s", namespace, endpoint.host, exc)
            return None
        finally:
            await client.aclose()
        return cache_stats.summarize(hashes)
