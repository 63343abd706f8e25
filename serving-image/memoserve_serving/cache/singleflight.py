"""In-process single-flight: identical concurrent misses share one computation.

The first caller of a key (the leader) runs the work in its own task, and callers that arrive
while it runs wait for its result. Most misses have no company, so this costs them a dict entry
and a future; a task of its own per flight cost ~7 µs per miss (docs/performance.md).

A leader that is cancelled (its request task went away: server shutdown, a caller's timeout)
takes its work with it, so nothing runs for nobody; callers waiting on it then start over, and
one of them leads the next flight. Nothing is left behind either way: the entry is removed as
the leader finishes, so a newcomer never joins a flight that is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _LeaderLeft(Exception):
    """The leader was cancelled before it had a result: waiters start over."""


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[bytes, asyncio.Future[T]] = {}

    def __contains__(self, key: bytes) -> bool:
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    async def do(self, key: bytes, work: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, bool]:
        """``work()``'s result, shared with concurrent callers of the same key.

        Returns ``(result, joined)``: ``joined`` is True when another caller's ``work`` ran
        (this caller's ``work`` was not called). Exceptions from ``work`` reach every waiter.
        """
        flight = self._flights.get(key)
        while flight is not None:
            try:
                # Shielded: a waiter that is cancelled must not cancel the leader's future.
                return await asyncio.shield(flight), True
            except _LeaderLeft:
                flight = self._flights.get(key)
        flight = self._flights[key] = asyncio.get_running_loop().create_future()
        try:
            result = await work()
        except asyncio.CancelledError:
            flight.set_exception(_LeaderLeft())
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(result)
            return result, False
        finally:
            del self._flights[key]
            flight.exception()  # seen: with no waiters, asyncio would log it as never retrieved
