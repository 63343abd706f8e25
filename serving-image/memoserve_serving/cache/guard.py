"""Redis calls through the circuit breaker, each failure counted once and turned into CacheDown.

Split in two steps because the client sends a command when it is *called*: :meth:`admit` asks
the breaker first (so an open breaker means no network at all), then the caller issues the
command (possibly several, pipelined) and awaits each through :meth:`finish`, or leaves a write
to complete on its own through :meth:`finish_later`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from memoserve_serving.cache.breaker import CircuitBreaker
from memoserve_serving.cache.resp import RedisClient
from memoserve_serving.cache.resp_connection import RedisError, RedisReplyError, RedisTimeout
from memoserve_serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")


class CacheDown(Exception):
    """A Redis operation failed or was refused by the breaker (already counted)."""


def error_kind(exc: RedisError) -> str:
    """The ``cache_error`` label of a failure: timeout, connection or error_reply."""
    if isinstance(exc, RedisTimeout):
        return "timeout"
    if isinstance(exc, RedisReplyError):
        return "error_reply"
    return "connection"


class GuardedRedis:
    """One Redis node's client behind its own breaker (a cluster has one per node)."""

    def __init__(
        self,
        client: RedisClient,
        breaker: CircuitBreaker,
        metrics: ServingMetrics,
        *,
        on_unreachable: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.breaker = breaker
        self._metrics = metrics
        # Told when the node timed out or dropped the connection: on a cluster, a failover
        # may have moved its slots, so the slot map is worth reading again.
        self._on_unreachable = on_unreachable

    def admit(self) -> None:
        """Raise :class:`CacheDown` (counted as breaker_open) unless the breaker allows a call."""
        if not self.breaker.allow():
            self._metrics.cache_error("breaker_open")
            raise CacheDown

    async def finish(self, pending: Awaitable[T]) -> T:
        """The reply, or :class:`CacheDown` after recording the failure."""
        try:
            result = await pending
        except RedisError as exc:
            self.failed(exc)
            raise CacheDown from exc
        self.breaker.success()
        return result

    def finish_later(self, pending: asyncio.Future[Any]) -> None:
        """Record the outcome of a command nobody waits for (a store), when its reply comes."""
        pending.add_done_callback(self._settled)

    def _settled(self, pending: asyncio.Future[Any]) -> None:
        if pending.cancelled():  # the client was closed first
            return
        exc = pending.exception()
        if exc is None:
            self.breaker.success()
        elif isinstance(exc, RedisError):
            self.failed(exc)
        else:  # not Redis's doing: a bug of ours, say so
            log.error("cache write failed unexpectedly", exc_info=exc)

    def failed(self, exc: RedisError) -> None:
        kind = error_kind(exc)
        self._metrics.cache_error(kind)
        if kind == "error_reply":
            # Redis answered, so it is up (full, say): opening would stop the hits too.
            self.breaker.success()
        else:
            self.breaker.failure()
            if self._on_unreachable is not None:
                self._on_unreachable()
        log.debug("cache operation failed (%s): %s", kind, exc)
