"""Publishing this pod's cache counts for the operator (memoserve_contract.cache_stats).

Every ``interval`` seconds, if requests came in since the last time, one EVAL adds the new hits
and lookups to the service's hash for the current minute, sets the model digest and the expiry:
one command, so a hash never holds hits without their lookups, and it is not a MULTI (requests
share the connection and would land inside the transaction). Best effort: a failed publish keeps
its counts for the next one; nothing here can slow or fail a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from memoserve_contract import cache_stats
from memoserve_serving.cache.resp_connection import Arg, RedisError

log = logging.getLogger(__name__)

_ADD = (
    b"redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]);"
    b"redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[4]);"
    b"redis.call('HSET', KEYS[1], ARGV[5], ARGV[6]);"
    b"redis.call('EXPIRE', KEYS[1], ARGV[7]); return 1"
)
Counts = Callable[[], tuple[int, int]]  # (hits, lookups) since the process started


class KeyedCommands(Protocol):
    """Sends a command about ``key`` to the node that holds it (RedisNodes: one Redis or a
    cluster's node for the key's slot)."""

    def command(self, key: bytes, *args: Arg) -> Awaitable[Any]: ...


class StatsPublisher:
    def __init__(
        self,
        redis: KeyedCommands,
        namespace: str,
        digest: str,
        counts: Counts,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis, self._namespace, self._digest = redis, namespace, digest
        self._counts, self._interval, self._clock = counts, interval, clock
        self._sent = (0, 0)

    async def publish(self) -> bool:
        """Send what was counted since the last publish; False (kept for later) if it failed."""
        hits, lookups = self._counts()
        new_hits, new_lookups = hits - self._sent[0], lookups - self._sent[1]
        if new_lookups <= 0:
            return True
        key = cache_stats.stats_key(self._namespace, cache_stats.bucket(self._clock())).encode()
        try:
            await self._redis.command(
                key,
                b"EVAL",
                _ADD,
                1,
                key,
                cache_stats.HITS.encode(),
                new_hits,
                cache_stats.LOOKUPS.encode(),
                new_lookups,
                cache_stats.DIGEST.encode(),
                self._digest.encode(),
                cache_stats.KEEP_SECONDS,
            )
        except RedisError as exc:
            log.debug("cache stats not published (kept for the next try): %s", exc)
            return False
        self._sent = (hits, lookups)
        return True

    async def run(self) -> None:
        """Publish every ``interval`` until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(self._interval)
                await self.publish()
        except asyncio.CancelledError:
            await self.publish()
            raise
