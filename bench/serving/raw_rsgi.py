"""The HTTP ceiling on granian: raw_asgi.py's fixed answer as an RSGI app.

granian's I/O threads start SCHED_BATCH, as memoserve's granian transport starts them
(memoserve_serving.scheduling), so this row is what that transport's HTTP costs with no app.

    granian --interface rsgi --http 1 --loop uvloop --no-ws --working-dir bench/serving raw_rsgi:app
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from raw_asgi import BODY

from memoserve_serving.scheduling import threads_started_as_batch

HEADERS = [("content-type", "application/json")]


class RawApp:
    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = contextlib.ExitStack()
        batch.enter_context(threads_started_as_batch("HTTP"))
        loop.call_soon(batch.close)  # after granian started its threads in this loop step

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        await proto()
        proto.response_bytes(200, HEADERS, BODY)


app = RawApp()
