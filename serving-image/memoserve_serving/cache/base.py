"""What the data plane sees of the cache."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable


class CacheResult(enum.StrEnum):
    """How the cache answered one request (the ``X-Memoserve-Cache`` header and metric label)."""

    HIT = "hit"  # answered from the cache (L1 or Redis, or joined an in-flight identical miss)
    MISS = "miss"  # the model ran and the answer was sent to the cache (not waited for)
    BYPASS = "bypass"  # the request asked not to read the cache (Cache-Control), or was invalid
    OFF = "off"  # no cache configured
    # the cache failed or was skipped by the breaker; served uncached. A store that fails after
    # the response went out is counted in the metrics instead.
    ERROR = "error"


class AnswerCache(Protocol):
    async def get_or_compute(
        self,
        key: bytes,
        compute: Callable[[], Awaitable[bytes]],
        *,
        read: bool = True,
        write: bool = True,
        share: bool = True,
    ) -> tuple[bytes, CacheResult]:
        """Cache-aside: the cached value for ``key``, or ``compute()``'s result, stored.

        Never raises for a cache failure (that is ``CacheResult.ERROR``); exceptions from
        ``compute`` propagate and nothing is stored. Identical concurrent misses run
        ``compute`` once in this process, and once across replicas when ``share`` (and the
        cache can coordinate replicas); ``share=False`` when running ``compute`` again costs
        less than coordinating.
        """
        ...

    async def warm_up(self) -> bool:
        """Connect before the first request; False if the backend is not there (never raises)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ReportsProblem(Protocol):
    """A cache that can say what keeps it from working (shown by the readiness endpoint)."""

    @property
    def problem(self) -> str | None: ...
