"""Misses batched into upstream calls: under load, one v2 call carries the rows of several.

A forward costs two HTTP exchanges and a request decoded and encoded twice, whatever its size:
sent one miss at a time, that is most of what a forwarded miss costs (docs/performance.md). So
while ``concurrency`` calls are in flight, new misses queue; when a call returns, or as soon as
a full batch of ``max_rows`` is queued, the queue goes as one call: the inputs concatenated along
the batch dimension (within the body size the front itself takes, which the upstream is
assumed to take too), the answer's outputs split back by rows. A miss that finds fewer than
``concurrency`` calls in flight goes at once, alone: an idle front adds no wait.

Only what the upstream declares batchable is batched (every input and output of its model
metadata has a variable first dimension, as Triton's ``max_batch_size`` and memoserve's batchable
runtimes report it), and only requests that differ in nothing but their rows (same inputs,
datatypes and trailing shapes, same outputs, no parameters). If a batched call is refused (4xx),
each miss is sent again alone, so each gets its own answer or its own error; an answer whose
rows do not add up turns batching off for good (the model was not row-wise after all).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.protocol.metadata import ModelMetadata
from memoserve_serving.protocol.types import InferenceRequest, Tensor
from memoserve_serving.upstream.errors import UpstreamRefused, UpstreamTimeout

log = logging.getLogger(__name__)

Outputs = tuple[Tensor, ...]
# One upstream call: the request, the outputs wanted, its deadline, the rows it carries.
Call = Callable[[InferenceRequest, Sequence[str], float | None, int], Awaitable[Outputs]]


def batchable_model(metadata: ModelMetadata) -> bool:
    """Every input and output the upstream lists has a variable first (batch) dimension."""
    specs = (*metadata.inputs, *metadata.outputs)
    return bool(metadata.inputs) and all(spec.shape[:1] == (-1,) for spec in specs)


def batch_signature(request: InferenceRequest, wanted: Sequence[str]) -> tuple[Any, ...] | None:
    """What misses must share to go in one call, or None when ``request`` must go alone."""
    if request.parameters or any(output.parameters for output in request.outputs):
        return None
    inputs = request.inputs
    if not inputs or not inputs[0].shape or inputs[0].shape[0] < 1:
        return None
    rows = inputs[0].shape[0]
    parts = []
    for tensor in inputs:
        if tensor.parameters or tensor.shape[:1] != (rows,):
            return None
        parts.append((tensor.name, tensor.datatype, tensor.shape[1:]))
    return tuple(parts), tuple(wanted)


def merge(requests: Sequence[InferenceRequest]) -> InferenceRequest:
    """One request whose inputs are ``requests``' inputs (same signature) one after another.
    Binary tensor data is row-major, so rows concatenate as bytes, BYTES elements included."""
    first = requests[0]
    inputs = []
    for index, tensor in enumerate(first.inputs):
        parts = [request.inputs[index] for request in requests]
        rows = sum(part.shape[0] for part in parts)
        raw = b"".join([part.raw_bytes() for part in parts])
        inputs.append(Tensor.from_raw(tensor.name, tensor.datatype, (rows, *tensor.shape[1:]), raw))
    return InferenceRequest(None, tuple(inputs), first.outputs)


def split(outputs: Outputs, rows: Sequence[int]) -> list[Outputs] | None:
    """``outputs`` of a merged request cut back into each request's rows (views, no copy);
    None when an output's first dimension is not the rows sent."""
    total = sum(rows)
    if any(not tensor.shape or tensor.shape[0] != total for tensor in outputs):
        return None
    parts: list[list[Tensor]] = [[] for _ in rows]
    for tensor in outputs:
        name, datatype, parameters = tensor.name, tensor.datatype, tensor.parameters
        data, trailing, start = tensor.data, tensor.shape[1:], 0
        for part, count in zip(parts, rows, strict=True):
            stop = start + count
            part.append(Tensor(name, datatype, (count, *trailing), data[start:stop], parameters))
            start = stop
    return [tuple(part) for part in parts]


@dataclass(slots=True, eq=False)
class _Miss:
    request: InferenceRequest
    rows: int
    size: int  # bytes of its inputs' tensor data
    signature: tuple[Any, ...]
    deadline: float | None
    future: asyncio.Future[Outputs] = field(repr=False)


class UpstreamBatcher:
    """Queue misses while ``concurrency`` calls are in flight; send the queue as batches.

    ``call`` makes one upstream call (its connection slots bound all calls together, and it sheds
    misses when none is free and too many wait); ``room`` says whether one more miss may wait
    here: if not, it goes as a call of its own, so batching never sheds a miss that would not
    have been shed without it.
    """

    def __init__(
        self,
        call: Call,
        metrics: ServingMetrics,
        *,
        max_rows: int,
        max_bytes: int,
        concurrency: int,
        room: Callable[[], bool],
    ) -> None:
        self._call = call
        self._metrics = metrics
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._concurrency = concurrency
        self._room = room
        self._queue: deque[_Miss] = deque()
        self._queued_rows = 0
        self._calls = 0  # in flight, sent by this batcher
        self._sending: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references
        self.enabled = True

    async def submit(
        self,
        request: InferenceRequest,
        wanted: Sequence[str],
        signature: tuple[Any, ...],
        deadline: float | None,
    ) -> Outputs:
        rows = request.inputs[0].shape[0]
        if (not self._queue and self._calls < self._concurrency) or not self._room():
            # Nothing to wait for; or no room to wait: a call of its own, which waits for a
            # connection or is shed as any miss would be without batching.
            return await self._alone(request, wanted, deadline, rows)
        loop = asyncio.get_running_loop()
        size = sum(len(tensor.raw_bytes()) for tensor in request.inputs)
        miss = _Miss(request, rows, size, signature, deadline, loop.create_future())
        self._queue.append(miss)
        self._queued_rows += rows
        self._send_ready()
        timer = None if deadline is None else loop.call_at(deadline, _expire, miss.future)
        try:
            return await miss.future
        finally:
            if timer is not None:
                timer.cancel()

    @property
    def queued(self) -> int:
        """Misses waiting for a batch."""
        return len(self._queue)

    async def _alone(
        self, request: InferenceRequest, wanted: Sequence[str], deadline: float | None, rows: int
    ) -> Outputs:
        self._calls += 1
        self._metrics.batch_size.observe(1)
        try:
            return await self._call(request, wanted, deadline, rows)
        finally:
            self._calls -= 1
            self._send_ready()

    def _send_ready(self) -> None:
        """Start a call for what is queued while a call is free, or a full batch is queued."""
        while self._queue and (
            self._calls < self._concurrency or self._queued_rows >= self._max_rows
        ):
            batch = self._take()
            if not batch:
                continue
            self._calls += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _take(self) -> list[_Miss]:
        """The queue's head and what matches it, in order, up to ``max_rows`` and ``max_bytes``
        of tensor data (what the upstream would take in one body); misses given up on
        meanwhile are dropped."""
        queue = self._queue
        first = queue.popleft()
        self._queued_rows -= first.rows
        batch, rows, size = [first], first.rows, first.size
        while queue and rows < self._max_rows:
            miss = queue[0]
            if (
                miss.signature != first.signature
                or rows + miss.rows > self._max_rows
                or size + miss.size > self._max_bytes
            ):
                break
            queue.popleft()
            self._queued_rows -= miss.rows
            batch.append(miss)
            rows += miss.rows
            size += miss.size
        return [miss for miss in batch if not miss.future.done()]

    async def _send(self, batch: list[_Miss]) -> None:
        try:
            self._metrics.batch_size.observe(len(batch))
            wanted = batch[0].signature[1]
            if len(batch) == 1:
                answers: list[Outputs | BaseException] = [await self._one(batch[0], wanted)]
            else:
                answers = await self._together(batch, wanted)
        except Exception as exc:  # the call failed: every miss in it sees why
            answers = [exc] * len(batch)
        except asyncio.CancelledError:  # the front is stopping
            for miss in batch:
                miss.future.cancel()
            raise
        finally:
            self._calls -= 1
            self._send_ready()
        for miss, answer in zip(batch, answers, strict=True):
            if miss.future.done():
                continue
            if isinstance(answer, BaseException):
                miss.future.set_exception(answer)
            else:
                miss.future.set_result(answer)

    async def _together(
        self, batch: list[_Miss], wanted: Sequence[str]
    ) -> list[Outputs | BaseException]:
        rows = [miss.rows for miss in batch]
        deadlines = [miss.deadline for miss in batch]
        latest = None if None in deadlines else max(d for d in deadlines if d is not None)
        merged = merge([miss.request for miss in batch])
        try:
            outputs = await self._call(merged, wanted, latest, sum(rows))
        except UpstreamRefused:  # maybe one miss's doing: each asks alone for its own answer
            return await self._each_alone(batch, wanted)
        parts = split(outputs, rows)
        if parts is None:
            log.warning(
                "the upstream's answer to %d batched rows has outputs of other lengths: "
                "its model is not row-wise, misses go one call each from now on",
                sum(rows),
            )
            self.enabled = False
            return await self._each_alone(batch, wanted)
        return list(parts)

    async def _each_alone(
        self, batch: list[_Miss], wanted: Sequence[str]
    ) -> list[Outputs | BaseException]:
        return await asyncio.gather(
            *(self._one(miss, wanted) for miss in batch), return_exceptions=True
        )

    async def _one(self, miss: _Miss, wanted: Sequence[str]) -> Outputs:
        return await self._call(miss.request, wanted, miss.deadline, miss.rows)


def _expire(future: asyncio.Future[Outputs]) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout("the request's deadline passed before its answer"))
