"""The serving lifespan's assembly: load the model, open the cache, start the batcher and
the stats publisher, and put the data plane in the serving state; close them all on exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from memoserve_contract.settings import ServingSettings
from memoserve_serving.batching import Batcher
from memoserve_serving.cache.base import AnswerCache
from memoserve_serving.dataplane import DataPlane, ServedModel
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.runtimes.base import Model
from memoserve_serving.state import CacheFactory, ServingState

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing
    from memoserve_serving.storage import Progress

log = logging.getLogger(__name__)


def load_served_model(settings: ServingSettings, progress: Progress | None = None) -> ServedModel:
    """Fetch and load the model (blocking: run it in a thread); ``progress`` sees the bytes."""
    from memoserve_serving.runtimes.loader import load_model
    from memoserve_serving.storage import ModelLoadError, fetch_model

    if settings.model_format is None:
        raise ModelLoadError("no model format given")
    files = fetch_model(settings.model_uri, settings.model_dir, progress)
    model = load_model(settings.model_format, files.path)
    return ServedModel(settings.model_name, settings.model_version, files.digest, model)


def open_cache(
    settings: ServingSettings, metrics: ServingMetrics, tracing: Tracing | None = None
) -> AnswerCache | None:
    if not settings.cache_enabled:
        log.warning("cache disabled by configuration: every request runs the model")
        return None
    if settings.redis_url is None:
        log.warning("no Redis URL configured: serving uncached (X-Memoserve-Cache: off)")
        return None
    from memoserve_serving.cache.store import open_answer_cache

    return open_answer_cache(settings, metrics, tracing)


def _publish_stats(
    settings: ServingSettings,
    metrics: ServingMetrics,
    served: ServedModel,
    cache: AnswerCache | None,
) -> asyncio.Task[None] | None:
    """The task that publishes the cache counts (memoserve_contract.cache_stats), if there is a
    Redis to publish them to."""
    from memoserve_serving.cache.store import RedisAnswerCache

    if not isinstance(cache, RedisAnswerCache) or settings.cache_stats_seconds <= 0:
        return None
    from memoserve_serving.cache.stats import StatsPublisher

    publisher = StatsPublisher(
        cache.nodes,
        settings.stats_namespace,
        served.digest,
        metrics.requests.cache_counts,
        interval=settings.cache_stats_seconds,
    )
    return asyncio.create_task(publisher.run(), name="memoserve-cache-stats")


@contextlib.asynccontextmanager
async def running_dataplane(
    state: ServingState,
    served: ServedModel | None = None,
    cache_factory: CacheFactory | None = None,
) -> AsyncIterator[None]:
    """Load the model (unless given), open the cache (``cache_factory``, default
    :func:`open_cache`) and batcher; close them all on exit.

    A cache front (``upstream_url``) loads no model: it listens at once and becomes ready when
    the upstream has said what it serves (it may start long before the model tier is up).
    """
    settings = state.settings
    async with contextlib.AsyncExitStack() as stack:
        if served is None and settings.upstream_url is not None:
            connecting = asyncio.create_task(
                _connect_upstream(state, cache_factory, stack), name="memoserve-upstream"
            )
            try:
                yield
            finally:
                state.dataplane = None
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting
            return
        if served is None:
            served = await asyncio.to_thread(load_served_model, settings)
        log.info(
            "model %s loaded (%s, digest %s)",
            served.name,
            settings.model_format,
            served.digest[:16],
            extra={"model": served.name, "digest": served.digest},
        )
        await _assemble(state, served, cache_factory, stack, _model_cost(settings))
        try:
            yield
        finally:
            state.dataplane = None


async def _connect_upstream(
    state: ServingState, cache_factory: CacheFactory | None, stack: contextlib.AsyncExitStack
) -> None:
    from memoserve_serving.upstream.connect import connect_upstream

    cost = _model_cost(state.settings)
    served = await connect_upstream(state.settings, state.metrics, stack, cost, state.tracing)
    await _assemble(state, served, cache_factory, stack, cost)


async def _assemble(
    state: ServingState,
    served: ServedModel,
    cache_factory: CacheFactory | None,
    stack: contextlib.AsyncExitStack,
    cost: ModelCost,
) -> None:
    """The data plane for ``served`` (``state.dataplane``), with what it needs pushed on
    ``stack`` to be closed in reverse order."""
    settings = state.settings
    # One thread per model: the runtimes use their own intra-op threads, and batching needs
    # the model to run one batch at a time so that the queue fills while it is busy.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memoserve-model")
    stack.callback(executor.shutdown, wait=False, cancel_futures=True)
    if cache_factory is None:
        cache = open_cache(settings, state.metrics, state.tracing)
    else:
        cache = cache_factory(settings, state.metrics)
    if cache is not None:
        stack.push_async_callback(cache.close)
        state.cache = cache
        await cache.warm_up()  # never fails: Redis may come up later
    batcher = None
    model = served.model
    if isinstance(model, Model) and settings.batch_max_size > 1 and model.batchable:
        batcher = Batcher(
            model,
            executor,
            state.metrics,
            max_size=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            cost=cost,
        )
        batcher.start()
        stack.push_async_callback(batcher.stop)
    dataplane = DataPlane(
        served,
        cache=cache,
        key_namespace=settings.cache_key_namespace,
        metrics=state.metrics,
        executor=executor,
        batcher=batcher,
        cost=cost,
        tracing=state.tracing,
    )
    publishing = _publish_stats(settings, state.metrics, served, cache)
    if publishing is not None:
        stack.push_async_callback(_cancelled, publishing)
    state.dataplane = dataplane
    state.assembled.set()


def _model_cost(settings: ServingSettings) -> ModelCost:
    """Whether a miss is worth the cross-replica lock (see MEMOSERVE_CACHE_LOCK_MIN_MODEL_MS)."""
    return ModelCost(expensive_at=settings.cache_lock_min_model_ms / 1000)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
