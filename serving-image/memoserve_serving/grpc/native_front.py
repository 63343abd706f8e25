"""The native transport: ModelInfer straight from pygrpc-native's low-level front.

pygrpc-native's ``NativeGrpcFront`` does HTTP/2, gRPC framing, deadlines and cancellation in
Rust (tokio I/O threads, outside the GIL) and hands each call over as an event: call id, request
bytes, metadata, time remaining. ModelInfer, the method a cache hit is, runs from those events
on this loop with nothing in between: a task per call, a small context with the four things
infer.py asks of one, and one ``respond``. pygrpc-native's grpc.aio-compatible server builds
grpc.aio's objects per call on top of the same front, which cost ~25 µs of a ~95 µs hit
(docs/performance.md). Every other path (the inference service's other methods, health,
reflection) is forwarded by the front to a grpc.aio server of ours on a Unix socket
(``set_fallback``): rare calls, served by grpcio's own code, with the same services as the
``aio`` transport.

The front's I/O threads run SCHED_BATCH (they are started by a thread switched to it for the
moment, and inherit it; no capability is needed to lower a policy): on a core shared with the
event loop, a thread woken by ``respond`` no longer preempts Python at once, which took ~1/3 of
a hit's CPU and raised its latency (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc  # type: ignore[import-untyped]  # no stubs
from pygrpc_native import EVENT_CANCEL, NativeGrpcFront

from memoserve_serving.scheduling import threads_started_as_batch

log = logging.getLogger(__name__)

FALLBACK_SOCKET = "fallback.sock"
MAX_SOCKET_PATH = 107
FLUSH_SECONDS = 2.0  # at stop, the least time for answers handed to the front to be sent
Metadata = tuple[tuple[str, str | bytes], ...]
Handler = Callable[[bytes, "CallContext"], Awaitable[bytes]]
_CANCELLED = grpc.StatusCode.CANCELLED.value[0]
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
_INTERNAL = grpc.StatusCode.INTERNAL.value[0]


class Aborted(Exception):
    """What ``CallContext.abort`` raises: the call ends with ``code`` and ``details``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code.value[0]
        self.details = details


class CallContext:
    """What a ModelInfer handler asks of its call (grpc.aio's ServicerContext, in part)."""

    __slots__ = ("_deadline", "_metadata", "trailing")

    def __init__(self, metadata: Metadata, deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline  # on the loop's clock
        self.trailing: Sequence[tuple[str, str]] = ()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.trailing = metadata

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise Aborted(code, details)


class NativeInferServer:
    """``path`` (ModelInfer) served by ``handler`` on a native front; the rest by ``fallback``.

    ``start`` and ``stop(grace)`` as grpc.aio's server: new calls get UNAVAILABLE once stopping,
    running ones get ``grace`` seconds, and their answers what is left of it (FLUSH_SECONDS at
    least) to be sent; a later call with a shorter grace ends either sooner.
    """

    def __init__(
        self,
        address: str,
        path: str,
        handler: Handler,
        fallback: grpc.aio.Server,
        *,
        max_receive_bytes: int,
        reuse_port: bool,
    ) -> None:
        self._handler = handler
        self._fallback = fallback
        self._max_receive_bytes = max_receive_bytes
        with threads_started_as_batch("gRPC"):  # the front's I/O threads start here
            self._front = NativeGrpcFront(  # OSError when it cannot bind ``address``
                address,
                [(path, False)],
                call_details=True,
                delay_stream_headers=True,  # an error is a trailers-only answer, as grpcio's
                keepalive_permit_without_calls=False,  # grpcio's default
                reuse_port=reuse_port,
                metrics=True,  # its counts of calls not yet sent, which stop() waits for
            )
        self.port: int = self._front.bound_port
        self._socket_dir = _socket_dir()
        self._socket = str(self._socket_dir / FALLBACK_SOCKET)
        fallback.add_insecure_port(f"unix:{self._socket}")  # RuntimeError when it cannot
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._cut_short = asyncio.Event()  # a second stop() with a shorter grace
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self._fallback.start()
        except BaseException:
            self._front.close()
            raise
        self._front.set_fallback(self._socket)
        with threads_started_as_batch("gRPC"):
            self._front.start()
        threading.Thread(target=self._pump, name="memoserve-grpc-events", daemon=True).start()

    async def stop(self, grace: float | None) -> None:
        if self._stopping:  # a second call: end the grace sooner, then wait for the first
            asyncio.get_running_loop().call_later(grace or 0, self._cut_short.set)
            await self._stopped.wait()
            return
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(grace or 0, FLUSH_SECONDS)
        fallback = asyncio.ensure_future(self._fallback.stop(grace))
        running = list(self._calls.values())
        if grace and running:
            await self._until_cut_short(asyncio.wait(running), grace)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await fallback
        await self._until_cut_short(self._sent(), deadline - loop.time())
        await asyncio.get_running_loop().run_in_executor(None, self._front.close)
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._stopped.set()

    async def _until_cut_short(self, waiting: Awaitable[object], seconds: float) -> None:
        """Wait for ``waiting`` at most ``seconds``, or until a second stop() ends it."""
        done = asyncio.ensure_future(waiting)
        cut = asyncio.ensure_future(self._cut_short.wait())
        await asyncio.wait([done, cut], timeout=max(seconds, 0), return_when="FIRST_COMPLETED")
        done.cancel()
        cut.cancel()

    async def _sent(self) -> None:
        """Wait until the front has sent every answer handed to it: ``close()`` drops the calls
        it still holds, and ``respond()`` only queues an answer (a big one takes a while)."""
        while True:
            report = self._front.metrics() or {}
            methods = report.get("methods", {}).values()
            if all(m["started"] == sum(s["count"] for s in m["status"].values()) for m in methods):
                return
            await asyncio.sleep(0.01)

    def _pump(self) -> None:
        """Hand the front's events to the loop, a batch at a time (its own thread: it blocks)."""
        front, loop = self._front, self._loop
        assert loop is not None
        while (events := front.recv_batch_details(64)) is not None:
            try:
                loop.call_soon_threadsafe(self._on_events, events)
            except RuntimeError:  # the loop closed without stop()
                front.close()
                return

    def _on_events(self, events: list[Any]) -> None:
        front, loop = self._front, self._loop
        assert loop is not None
        for kind, call_id, _, payload, _, details in events:
            if kind == EVENT_CANCEL:  # the client went away or its deadline passed
                if (task := self._calls.get(call_id)) is not None:
                    task.cancel()
            elif self._stopping:
                front.fail(call_id, _UNAVAILABLE, "the server is shutting down")
            elif len(payload) > self._max_receive_bytes:
                message = f"the request is {len(payload)} bytes, above {self._max_receive_bytes}"
                front.fail(call_id, _RESOURCE_EXHAUSTED, message)
            else:
                metadata, _, remaining = details
                deadline = None if remaining is None else loop.time() + remaining
                context = CallContext(metadata, deadline)
                self._calls[call_id] = loop.create_task(self._call(call_id, payload, context))

    async def _call(self, call_id: int, payload: bytes, context: CallContext) -> None:
        front = self._front
        try:
            response = await self._handler(payload, context)
        except Aborted as exc:
            front.fail(call_id, exc.code, exc.details, trailing_metadata=list(context.trailing))
        except asyncio.CancelledError:  # a no-op when the client is already gone
            front.fail(call_id, _CANCELLED, "Cancelled")
        except Exception:  # the handler answers its own errors: this is a bug of ours
            log.exception("ModelInfer failed unexpectedly")
            front.fail(call_id, _INTERNAL, "internal server error")
        else:
            front.respond(call_id, response, None, context.trailing)
        finally:
            self._calls.pop(call_id, None)


def _socket_dir() -> Path:
    """A new directory for the fallback's socket: under TMPDIR, or /tmp when TMPDIR is too deep
    for a socket path (sun_path holds 107 characters)."""
    made = Path(tempfile.mkdtemp(prefix="memoserve-grpc-"))
    if len(str(made / FALLBACK_SOCKET)) <= MAX_SOCKET_PATH:
        return made
    made.rmdir()
    return Path(tempfile.mkdtemp(prefix="memoserve-grpc-", dir="/tmp"))
