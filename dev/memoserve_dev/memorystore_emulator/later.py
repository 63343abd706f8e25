"""Work an operation does later (after the faults' delay), as tasks its backend owns: a failure
of the emulator itself is logged and handed to ``on_error`` (the operation ends in INTERNAL),
and ``close`` cancels what is still waiting out its delay and waits for what has begun (work
in a thread cannot be cancelled: a cancelled start would leave its processes behind)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Later:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()  # still in their delay

    def run(
        self,
        delay: float,
        work: Callable[[], Awaitable[None]],
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            self._waiting.discard(task)
            try:
                await work()
            except Exception as exc:  # the emulator's own failure: report it, keep serving
                log.exception("emulated operation failed")
                if on_error is not None:
                    on_error(exc)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        self._waiting.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._waiting.discard)

    async def close(self) -> None:
        for task in list(self._waiting):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
