"""The upstream as a backend of the data plane: a miss becomes a v2 REST call to it, alone or
with other misses' rows when the upstream is busy and its model batchable (batching.py).

Calls go over a pool of keep-alive connections (http1.py). At most ``max_connections`` are in
flight; up to ``max_queued`` more misses wait for one (or for a batch); the rest are shed at
once (503, Retry-After), so a saturated model tier costs the front bounded memory, never a
growing queue. A call ends by its deadline (the client's, else ``timeout``); what the upstream
refuses (4xx) goes back to the client as it said it, and nothing that failed is ever cached (the
data plane stores only answers ``run`` returns).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memoserve_serving.backend import ModelBackend
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.protocol.metadata import ModelMetadata
from memoserve_serving.protocol.types import InferenceRequest, Tensor
from memoserve_serving.tracing import CLIENT
from memoserve_serving.upstream.batching import UpstreamBatcher, batch_signature, batchable_model
from memoserve_serving.upstream.codec import (
    InvalidAnswer,
    decode_answer,
    encode_request,
    error_message,
)
from memoserve_serving.upstream.errors import (
    Overloaded,
    UpstreamFailed,
    UpstreamNotReady,
    UpstreamRefused,
    UpstreamTimeout,
)
from memoserve_serving.upstream.http1 import Http1Pool

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

_JSON = ((b"Content-Type", b"application/json"),)


class UpstreamBackend(ModelBackend):
    """``pool`` is the caller's to close (connect.py pushes it on the lifespan's stack)."""

    # The upstream checks its own requests; its metadata may be incomplete (MLServer lists no
    # inputs unless told), so the front does not second-guess it.
    checks_requests = False
    span = ("upstream call", CLIENT)

    def __init__(
        self,
        pool: Http1Pool,
        url: str,
        model: str,
        metadata: ModelMetadata,
        *,
        metrics: ServingMetrics,
        timeout: float,
        max_connections: int,
        max_queued: int,
        binary: bool = False,
        batch_max_rows: int = 1,
        batch_max_bytes: int = 16 << 20,
        batch_concurrency: int = 1,
        cost: ModelCost | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.metadata = metadata
        self.url = url
        self.binary = binary  # the upstream serves the binary tensor data extension
        self._pool = pool
        self._infer_path = f"/v2/models/{model}/infer".encode()
        self._metrics = metrics
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._max_queued = max_queued
        self._queued = 0
        self._calling = 0  # calls sent and not yet answered
        # What a call costs the upstream: whether a miss is worth the cross-replica lock. A
        # call's time is mostly the upstream's queue when it is busy, so it is divided by the
        # calls in flight as it started (Little's law: a busy server's time per request), as
        # the batcher divides a batch's time by its rows; else a fast model behind a busy tier
        # would look slow and every miss would pay the lock's Redis round trip.
        self._cost = cost
        self._tracing = tracing  # on: the call carries the trace context (traceparent)
        self._batcher: UpstreamBatcher | None = None
        if batch_max_rows > 1 and batchable_model(metadata):
            self._batcher = UpstreamBatcher(
                self._run,
                metrics,
                max_rows=batch_max_rows,
                max_bytes=batch_max_bytes,
                concurrency=min(batch_concurrency, max_connections),
                room=self._room,
            )

    async def run(
        self, request: InferenceRequest, wanted: Sequence[str], *, deadline: float | None = None
    ) -> tuple[Tensor, ...]:
        batcher = self._batcher
        self._metrics.upstream_inflight += 1  # a miss, whichever call carries it
        try:
            if (
                batcher is not None
                and batcher.enabled
                and (signature := batch_signature(request, wanted)) is not None
                # a traced miss goes alone: its call carries its own trace context
                and (self._tracing is None or not self._tracing.recording())
            ):
                return await batcher.submit(request, wanted, signature, deadline)
            inputs = request.inputs
            rows = inputs[0].shape[0] if inputs and inputs[0].shape else 1
            return await self._run(request, wanted, deadline, rows)
        finally:
            self._metrics.upstream_inflight -= 1

    async def _run(
        self, request: InferenceRequest, wanted: Sequence[str], deadline: float | None, rows: int
    ) -> tuple[Tensor, ...]:
        """One call for ``request`` (``rows`` rows: what the upstream's time is divided by)."""
        if self._slots.locked() and not self._room():
            self._metrics.shed.inc()
            raise Overloaded(f"the model tier is saturated ({self._waiting()} misses waiting)")
        body, json_length = encode_request(request, wanted, binary=self.binary)
        answer, seconds, sharing = await self._call_when_free(body, json_length, wanted, deadline)
        if self._cost is not None:  # its share of the time, for its rows
            self._cost.observe(seconds / sharing, rows)
        return answer

    def _waiting(self) -> int:
        """Misses waiting: for a connection, or for a batch."""
        return self._queued + (0 if self._batcher is None else self._batcher.queued)

    def _room(self) -> bool:
        return self._waiting() < self._max_queued

    async def _call_when_free(
        self, body: bytes, json_length: int | None, wanted: Sequence[str], deadline: float | None
    ) -> tuple[tuple[Tensor, ...], float, int]:
        """Wait for a connection slot, then call: the answer, how long the call took, and how
        many calls were in flight as it started (itself included)."""
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        self._calling += 1
        sharing = self._calling
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            answer = await self._call(body, json_length, wanted, deadline)
            return answer, loop.time() - started, sharing
        finally:
            self._calling -= 1
            self._slots.release()

    async def _call(
        self, body: bytes, json_length: int | None, wanted: Sequence[str], deadline: float | None
    ) -> tuple[Tensor, ...]:
        headers: tuple[tuple[bytes, bytes], ...] = _JSON
        if json_length is not None:
            headers = (*_JSON, (b"Inference-Header-Content-Length", str(json_length).encode()))
        if self._tracing is not None:
            context = self._tracing.outgoing_context()
            headers = (*headers, *((k.encode(), v.encode()) for k, v in context.items()))
        seconds = self._timeout
        if deadline is not None:
            seconds = min(seconds, deadline - asyncio.get_running_loop().time())
            if seconds <= 0:
                raise UpstreamTimeout("the request's deadline passed before the upstream call")
        try:
            response = await self._pool.request(
                b"POST", self._infer_path, body, headers, timeout=seconds
            )
        except TimeoutError:
            raise UpstreamTimeout(
                f"upstream {self.url} did not answer within {seconds:.3g} s"
            ) from None
        except OSError as exc:  # ConnectionError included
            raise UpstreamFailed(f"upstream {self.url}: {exc or type(exc).__name__}") from None
        status, payload = response.status, response.body
        if status == 200:
            length = response.headers.get(b"inference-header-content-length")
            try:
                return decode_answer(payload, int(length) if length else None, wanted)
            except (InvalidAnswer, ValueError) as exc:
                problem = f"upstream {self.url} answered an invalid response: {exc}"
                raise UpstreamFailed(problem) from None
        message = error_message(payload)
        if 400 <= status < 500:
            raise UpstreamRefused(status, message)
        if status == 503:
            raise UpstreamNotReady(f"upstream {self.url} is not ready: {message}")
        raise UpstreamFailed(f"upstream {self.url} answered {status}: {message}")
