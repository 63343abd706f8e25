"""In-process single-flight: identical concurrent misses share one computation.

The shared work runs in a task of its own, not in the first caller's task, so a client that
disconnects (its request task is cancelled) does not cancel the answer the others wait for.
When the *last* waiter goes away the task is cancelled too (no model time for nobody) and the
entry is removed at once, so nothing is left behind and a newcomer starts afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[bytes, _Flight[T]] = {}

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
        joined = flight is not None
        if flight is None:
            new = flight = _Flight(asyncio.get_running_loop().create_task(work()))
            self._flights[key] = new
            new.task.add_done_callback(lambda _: self._forget(key, new))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), joined
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # Only a cancelled waiter leaves before the task is done. Forget the flight
                # now, not when the cancellation lands: a caller arriving in between must not
                # join a task that is about to raise CancelledError at it.
                self._forget(key, flight)
                flight.task.cancel()

    def _forget(self, key: bytes, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:  # a newer flight for the key may have started
            del self._flights[key]
