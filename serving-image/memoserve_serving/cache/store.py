"""The Redis-backed answer cache: L1 -> Redis -> single-flight -> compute -> store. Fail-open.

Results (``X-Memoserve-Cache``):

* HIT: the value came from L1 or Redis, or from a computation this request did not run: an
  identical in-flight miss in this process (``singleflight_join("local")``), or one that another
  replica (or a flight that just ended) stored while this miss was taking the Redis lock or
  waiting on it (``singleflight_join("remote")``).
* MISS: this request's ``compute`` ran and its value was stored (not stored when write=False).
* BYPASS: read=False (``no-cache``): the cache was not read; computed and stored if write.
  Also an answer larger than ``max_value_bytes``: served, neither stored nor kept in the L1,
  counted in ``memoserve_cache_oversize_total``.
* ERROR: a Redis operation the request needed (GET, lock, poll, SET) failed: timeout,
  connection, error reply (e.g. OOM on a full Redis) or breaker open. The value was computed
  and served; a failed SET after a successful compute is ERROR as well, since the answer was
  not stored. Counted once via ``metrics.cache_error(kind)``. Never raised.

After its first Redis failure a request makes no more Redis calls it would wait for, so a hung
Redis costs a request at most one timeout, and nothing once the breaker is open. Only the lock
release is best effort (fire-and-forget, it expires anyway) and never changes the result.

On a Redis Cluster (:mod:`~memoserve_serving.cache.nodes`) each key's commands go to the node
serving its slot, through that node's breaker: "Redis" above means the key's node, so one dead
shard turns only its keys' lookups into ERROR. The answer and its lock share a hash tag (see
keys.py), so the lock's multi-key commands never cross slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from memoserve_contract.settings import ServingSettings
from memoserve_serving.cache.base import AnswerCache, CacheResult
from memoserve_serving.cache.breaker import CircuitBreaker
from memoserve_serving.cache.guard import CacheDown, GuardedRedis
from memoserve_serving.cache.l1 import L1Cache
from memoserve_serving.cache.nodes import RedisNodes
from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.resp import RedisClient
from memoserve_serving.cache.resp_connection import RedisError
from memoserve_serving.cache.singleflight import SingleFlight
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.tracing import now_ns

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

log = logging.getLogger(__name__)

Compute = Callable[[], Awaitable[bytes]]

LOCK_PREFIX = b"lock:"
# Delete the lock only if it still holds our token: after our lock expired, another replica
# may hold it, and a plain DEL would let a third one in.
_RELEASE = b'if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end'
# For the hit path: an enum member looked up on its class costs ~10 attribute reads (3.11).
_HIT = CacheResult.HIT
# Polling for another replica's answer: quick at first (cheap models), then every 50 ms.
_POLL_FIRST = 0.002
_POLL_MAX = 0.05
# Spans of the miss path (tracing.py): a request that waited for another's answer.
_WAIT_SPAN = "single-flight wait"
_FLIGHT = "memoserve.singleflight"  # local (this process) or remote (another replica's lock)
_STORE_SPAN = "cache store"  # sent, not awaited: the span marks the moment
_BYTES = "memoserve.cache.bytes"
# How long startup waits for the first IAM access token (see warm_up).
_CREDENTIALS_WARM_UP_SECONDS = 10.0


class RedisAnswerCache:
    """:class:`AnswerCache` over :class:`RedisNodes` (one Redis or a cluster) and an L1."""

    def __init__(
        self,
        nodes: RedisNodes,
        metrics: ServingMetrics,
        *,
        ttl_seconds: int,
        lock_ttl_ms: int | None = 2000,
        l1: L1Cache | None = None,
        max_value_bytes: int | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.nodes = nodes
        self._tracing = tracing  # spans of the miss path: single-flight waits, stores
        self._max_value_bytes = max_value_bytes  # None: no cap
        self._metrics = metrics
        self._ttl_ms = ttl_seconds * 1000
        self._lock_ttl_ms = lock_ttl_ms  # None: no cross-replica single-flight
        self._l1 = l1
        self._flights: SingleFlight[tuple[bytes, CacheResult]] = SingleFlight()

    async def get_or_compute(
        self,
        key: bytes,
        compute: Compute,
        *,
        read: bool = True,
        write: bool = True,
        share: bool = True,
    ) -> tuple[bytes, CacheResult]:
        if not read:
            return await self._bypass(key, compute, write)
        l1 = self._l1
        if l1 is not None and (value := l1.get(key)) is not None:
            self._metrics.l1_hits.inc()
            return value, _HIT
        # The hot path, inlined: the key's node, its breaker check, one pipelined GET.
        node = self.nodes.reader(key)
        if node.breaker.allow():
            try:
                value = await node.client.get(key)
            except RedisError as exc:  # or a cluster's redirect
                redis_ok, value = await self._get_after(exc, node, key)
            else:
                node.breaker.success()
                redis_ok = True
            if value is not None:
                if l1 is not None:
                    l1.put(key, value)
                return value, _HIT
        else:
            redis_ok = False
            self._metrics.cache_error("breaker_open")
        if not write and key not in self._flights:  # no-store: nothing to share or store
            return await compute(), CacheResult.MISS if redis_ok else CacheResult.ERROR
        # A Redis outage must not multiply model runs either, so misses share a flight even
        # when Redis failed; such a flight only computes.
        waiting_since = now_ns()
        (value, result), joined = await self._flights.do(
            key, lambda: self._fill(key, compute, redis_ok, share)
        )
        if joined:
            self._metrics.singleflight_join("local")
            if self._tracing is not None and self._tracing.recording():
                self._tracing.past_span(_WAIT_SPAN, waiting_since, **{_FLIGHT: "local"})
            return value, CacheResult.HIT
        return value, result

    async def _get_after(
        self, exc: RedisError, node: GuardedRedis, key: bytes
    ) -> tuple[bool, bytes | None]:
        """(Redis answered, the value) for a GET that failed or was redirected."""
        try:
            value = await self.nodes.redirected(exc, node, (b"GET", key))
        except RedisError as failure:
            node.failed(failure)
            return False, None
        node.breaker.success()
        return True, value

    async def _fill(
        self, key: bytes, compute: Compute, redis_ok: bool, share: bool
    ) -> tuple[bytes, CacheResult]:
        """The shared miss: lock (or wait for the holder) if ``share``, compute, store, release."""
        token = None
        if share and redis_ok and self._lock_ttl_ms is not None:
            waiting_since = now_ns()
            try:
                token, value = await self._lock_or_wait(key, self._lock_ttl_ms)
            except CacheDown:
                redis_ok = False
            else:
                if value is not None:
                    self._metrics.singleflight_join("remote")
                    if self._tracing is not None and self._tracing.recording():
                        self._tracing.past_span(_WAIT_SPAN, waiting_since, **{_FLIGHT: "remote"})
                    self._l1_put(key, value)
                    return value, CacheResult.HIT
        try:
            value = await compute()
        except BaseException:  # an error or a cancellation: free the key for other replicas
            if token is not None:
                self._release_nowait(key, token)
            raise
        if self._oversize(value):
            if token is not None:
                self._release_nowait(key, token)
            return value, CacheResult.BYPASS
        self._l1_put(key, value)
        if not redis_ok:
            return value, CacheResult.ERROR
        return value, self._store(key, value, token)

    async def _lock_or_wait(
        self, key: bytes, lock_ttl_ms: int
    ) -> tuple[bytes | None, bytes | None]:
        """(our lock token, None) if we took the lock; else (None, the stored value or None).

        None for both: the holder finished without storing (its compute failed) or took longer
        than the lock TTL; the caller then computes without the lock.
        """
        token = secrets.token_bytes(16)
        lock_key = LOCK_PREFIX + key
        nodes = self.nodes
        node = nodes.primary(key)
        node.admit()
        acquire = nodes.send(node, b"SET", lock_key, token, b"PX", lock_ttl_ms, b"NX")
        # Look again, in the same round trip: the answer may have been stored between our GET
        # and now (by a flight that just ended here, or by another replica).
        recheck = nodes.send(node, b"GET", key)
        try:
            acquired = await node.finish(acquire)
            value = await node.finish(recheck)
        except BaseException:  # timed out or cancelled: the SET may still land, undo it
            self._release_nowait(key, token)
            _forget(recheck)
            raise
        if value is not None:
            if acquired is not None:
                self._release_nowait(key, token)
            return None, value
        if acquired is not None:
            return token, None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + lock_ttl_ms / 1000
        delay = _POLL_FIRST
        while True:
            await asyncio.sleep(delay)
            node = nodes.primary(key)  # the map may have changed meanwhile
            node.admit()
            value, holder = await node.finish(nodes.send(node, b"MGET", key, lock_key))
            if value is not None:
                return None, value
            if holder is None or loop.time() >= give_up:
                return None, None
            delay = min(2 * delay, _POLL_MAX, max(give_up - loop.time(), 0.0))

    def _store(self, key: bytes, value: bytes, token: bytes | None) -> CacheResult:
        """Send the answer (and our lock's release after it), without waiting for the reply.

        The response does not wait for Redis once the model has answered: a store costs the
        client no round trip, and a slow Redis no second timeout. Commands on the connection
        run in order, so a lookup sent after this one finds the answer. ERROR only when the
        value cannot even be sent (breaker open); a store that fails later is counted
        (``memoserve_cache_errors_total``) and feeds the breaker like any failure.
        """
        node = self.nodes.primary(key)
        if self._tracing is not None and self._tracing.recording():
            self._tracing.past_span(_STORE_SPAN, now_ns(), **{_BYTES: len(value)})
        try:
            node.admit()
        except CacheDown:
            if token is not None:
                self._release_nowait(key, token)
            return CacheResult.ERROR
        node.finish_later(self.nodes.send(node, b"SET", key, value, b"PX", self._ttl_ms))
        if token is not None:  # same write as the SET and after it: waiters see the value first
            self._release_nowait(key, token)
        return CacheResult.MISS

    async def _bypass(self, key: bytes, compute: Compute, write: bool) -> tuple[bytes, CacheResult]:
        value = await compute()
        if not write or self._oversize(value):
            return value, CacheResult.BYPASS
        self._l1_put(key, value)
        if self._store(key, value, None) is CacheResult.ERROR:
            return value, CacheResult.ERROR
        return value, CacheResult.BYPASS

    def _oversize(self, value: bytes) -> bool:
        cap = self._max_value_bytes
        if cap is None or len(value) <= cap:
            return False
        self._metrics.cache_oversize.inc()
        return True

    def _release_nowait(self, key: bytes, token: bytes) -> None:
        nodes = self.nodes
        node = nodes.primary(key)
        args = (b"EVAL", _RELEASE, 1, LOCK_PREFIX + key, token)
        if nodes.standalone:
            node.client.send_nowait(*args)
        elif node.client.connected:  # a cluster: follow a redirect, nobody waits for it
            _forget(nodes.send(node, *args))

    def _l1_put(self, key: bytes, value: bytes) -> None:
        if self._l1 is not None:
            self._l1.put(key, value)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def client(self) -> RedisClient:
        """The client of the address we were given (on one Redis: the only one)."""
        return self.nodes.seed.client

    @property
    def breaker(self) -> CircuitBreaker:
        return self.nodes.seed.breaker

    @property
    def problem(self) -> str | None:
        """Why the cache cannot authenticate to Redis now (IAM auth), for readiness; or None."""
        source = self.client.config.credentials
        return source.problem if source is not None else None

    async def warm_up(self) -> bool:
        """Connect now rather than on the first request, and learn whether Redis is a cluster;
        False (logged) if Redis is not there."""
        source = self.client.config.credentials
        if source is not None:
            # The first access token may take longer than a connect may (google-auth finds the
            # metadata server first): wait for it here, once, not on the requests' time. A
            # failure is logged by the source.
            with contextlib.suppress(RedisError, TimeoutError):
                async with asyncio.timeout(_CREDENTIALS_WARM_UP_SECONDS):
                    await source.credentials()
        try:
            await self.nodes.connect()
        except RedisError as exc:
            log.warning("Redis not reachable at startup, serving uncached until it is: %s", exc)
            return False
        return True

    async def close(self) -> None:
        await self.nodes.close()
        source = self.client.config.credentials
        if source is not None:  # shared by every node's client (open_answer_cache)
            await source.close()
        if self._l1 is not None:
            self._l1.clear()


def _forget(pending: Awaitable[object]) -> None:
    """Stop caring about a reply: retrieve its error, so asyncio does not log it as lost."""
    if isinstance(pending, asyncio.Future):
        pending.add_done_callback(lambda f: f.cancelled() or f.exception())


def open_answer_cache(
    settings: ServingSettings, metrics: ServingMetrics, tracing: Tracing | None = None
) -> AnswerCache:
    """The Redis-backed cache for ``settings`` (no I/O: it connects on first use)."""
    l1 = None
    if settings.l1_max_bytes:
        l1 = L1Cache(settings.l1_max_bytes, settings.l1_ttl_seconds)

    def breaker(address: str) -> CircuitBreaker:
        metrics.breaker_state(address, False)  # each node's series, from its first connection

        def changed(is_open: bool) -> None:
            metrics.breaker_state(address, is_open)

        return CircuitBreaker(
            settings.redis_breaker_failures,
            settings.redis_breaker_reset_seconds,
            name=f"Redis {address}",
            on_change=changed,
        )

    nodes = RedisNodes(
        RedisConfig.from_settings(settings, on_auth_failure=metrics.cache_auth_failure),
        metrics,
        breaker,
        read_replicas=settings.redis_read_replicas,
    )
    return RedisAnswerCache(
        nodes,
        metrics,
        ttl_seconds=settings.cache_ttl_seconds,
        lock_ttl_ms=settings.cache_lock_ttl_ms if settings.cache_lock_enabled else None,
        l1=l1,
        max_value_bytes=settings.cache_max_value_bytes or None,
        tracing=tracing,
    )
