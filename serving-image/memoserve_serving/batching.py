"""Dynamic batching of cache misses: concurrent requests share one model execution.

Requests whose inputs agree on everything but the batch dimension (same names, datatypes and
trailing shapes, same requested outputs) are concatenated along dimension 0, run once, and the
outputs are split back by row counts. Batches run one after another: while the model is busy the
queue fills, so a loaded server batches more without waiting longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.runtimes.base import Model

Arrays = dict[str, np.ndarray[Any, Any]]


@dataclass(slots=True)
class _Item:
    inputs: Mapping[str, np.ndarray[Any, Any]]
    outputs: tuple[str, ...]
    rows: int
    signature: tuple[Any, ...]
    future: asyncio.Future[Arrays] = field(repr=False)


def _signature(
    inputs: Mapping[str, np.ndarray[Any, Any]], outputs: tuple[str, ...]
) -> tuple[Any, ...]:
    """What requests must share to run in one batch: input names, dtypes, trailing shapes."""
    parts = [(name, array.dtype, array.shape[1:]) for name, array in inputs.items()]
    if len(parts) > 1:
        parts.sort()  # names differ, so dtypes are never compared
    return tuple(parts), outputs


class Batcher:
    """Queue misses for ``model`` and run them in batches of at most ``max_size`` rows.

    The queue is a deque and one future the batch loop sleeps on: ``submit`` wakes it only for
    the first item of a batch and when a batch is full, so queueing a request costs a few list
    operations (asyncio.Queue with wait_for cost a task per wait).
    """

    def __init__(
        self,
        model: Model,
        executor: Executor,
        metrics: ServingMetrics,
        *,
        max_size: int,
        max_wait_ms: float,
        cost: ModelCost | None = None,
    ) -> None:
        self._model = model
        self._executor = executor
        self._metrics = metrics
        self._cost = cost if cost is not None else ModelCost()
        self._max_size = max_size
        self._max_wait = max_wait_ms / 1000.0
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Future[None] | None = None  # set while the loop sleeps
        # Rows queued that wake the loop: 0 (any item) when idle, max_size when filling a batch.
        self._wake_at_rows = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="memoserve-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> Arrays:
        """Run ``inputs`` (each with the batch dimension first) as part of a batch."""
        names = tuple(sorted(outputs))
        rows = next(iter(inputs.values())).shape[0] if inputs else 0
        future: asyncio.Future[Arrays] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(inputs, names, rows, _signature(inputs, names), future))
        self._queued_rows += rows
        wakeup = self._wakeup
        if wakeup is not None and self._queued_rows >= self._wake_at_rows and not wakeup.done():
            wakeup.set_result(None)
        return await future

    async def _sleep(self, wake_at_rows: int, seconds: float | None) -> None:
        """Until ``wake_at_rows`` rows are queued, or ``seconds`` have passed (if given)."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        self._wake_at_rows = wake_at_rows
        timer = None if seconds is None else loop.call_later(seconds, _wake, wakeup)
        try:
            await wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _next_batch(self) -> list[_Item]:
        queue = self._queue
        while not queue:
            await self._sleep(0, None)  # any item wakes it, even one of zero rows
        if self._queued_rows < self._max_size and self._max_wait > 0:
            await self._sleep(self._max_size, self._max_wait)
        first = queue.popleft()
        batch, rows = [first], first.rows
        # Take the items that match the first, in order, up to max_size rows; an item that
        # does not match or fit stops the batch and leads the next one.
        while queue and rows < self._max_size:
            item = queue[0]
            if item.signature != first.signature or rows + item.rows > self._max_size:
                break
            batch.append(queue.popleft())
            rows += item.rows
        self._queued_rows -= rows
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [item for item in await self._next_batch() if not item.future.done()]
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._execute, batch)
            except Exception as exc:  # the model failed: every caller in the batch sees it
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    def _execute(self, batch: list[_Item]) -> list[Arrays]:
        """Worker thread: concatenate, run once, split by rows."""
        first = batch[0]
        if len(batch) == 1:
            merged: Mapping[str, np.ndarray[Any, Any]] = first.inputs
        else:
            merged = {
                name: np.concatenate([item.inputs[name] for item in batch]) for name in first.inputs
            }
        produced = _predict(
            self._model,
            merged,
            first.outputs,
            self._metrics,
            self._cost,
            requests=len(batch),
            rows=sum(item.rows for item in batch),
        )
        if len(batch) == 1:
            return [produced]
        # Each caller's rows as a view (basic slicing: np.split costs ~1 µs per part).
        results = []
        start = 0
        for item in batch:
            stop = start + item.rows
            results.append({name: array[start:stop] for name, array in produced.items()})
            start = stop
        return results


def _wake(wakeup: asyncio.Future[None]) -> None:
    if not wakeup.done():
        wakeup.set_result(None)


def run_unbatched(
    model: Model, metrics: ServingMetrics, cost: ModelCost
) -> Callable[[Mapping[str, np.ndarray[Any, Any]], Sequence[str]], Arrays]:
    """The same bookkeeping for one request at a time (non-batchable models, batching off)."""

    def run(inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]) -> Arrays:
        # One request, whatever its rows: that is what a duplicate run would cost.
        return _predict(model, inputs, outputs, metrics, cost, requests=1, rows=1)

    return run


def _predict(
    model: Model,
    inputs: Mapping[str, np.ndarray[Any, Any]],
    outputs: Sequence[str],
    metrics: ServingMetrics,
    cost: ModelCost,
    *,
    requests: int,
    rows: int,
) -> Arrays:
    """Run the model (worker thread) and record what it took: metrics and the cost per row."""
    started = time.perf_counter()
    produced = model.predict(inputs, outputs)
    seconds = time.perf_counter() - started
    metrics.model_seconds.observe(seconds)
    metrics.batch_size.observe(requests)
    cost.observe(seconds, rows)
    return produced
