"""The HTTP app: v2 health and metadata routes, /metrics, and the infer hot path in front.

``create_app`` builds everything from its arguments; nothing happens at import time. The model,
the cache and the batcher belong to the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from memoserve_contract.settings import ServingSettings
from memoserve_serving import EXTENSIONS, SERVER_NAME, __version__
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.http.infer_route import InferRoute
from memoserve_serving.http.worker_metrics import WorkerMetrics
from memoserve_serving.lifespan import running_dataplane
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.protocol.errors import InferenceError
from memoserve_serving.state import GRACEFUL_SHUTDOWN_SECONDS, CacheFactory, ServingState
from memoserve_serving.tracing import open_tracing


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Routes:
    """The non-infer endpoints; each reads the shared state."""

    def __init__(self, state: ServingState, shared: WorkerMetrics | None) -> None:
        self.state = state
        self.shared = shared  # one of several workers: /metrics is every worker's

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        """200 {"ready": true} once the model serves; a cache that cannot work adds
        ``"cache": {"status": "degraded", "problem": "..."}`` (e.g. no IAM access token).

        Such a pod stays ready: it answers every request, uncached, as with a dead Redis. A
        cache problem is usually shared by every replica (one service account, one Redis), so
        unready pods would turn a slower service into no service at all; the body, the log
        line and ``memoserve_cache_auth_failures_total`` say what is wrong instead.
        """
        ready = self.state.ready
        body: dict[str, object] = {"ready": ready}
        problem = self.state.cache_problem()
        if problem is not None:
            body["cache"] = {"status": "degraded", "problem": problem}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse(
            {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}
        )

    def _served(self, request: Request) -> ServedModel | JSONResponse:
        try:
            dataplane = self.state.dataplane_for(
                request.path_params["model"], request.path_params.get("version")
            )
        except InferenceError as exc:
            return _error(exc.status, str(exc))
        return dataplane.served

    async def model_metadata(self, request: Request) -> Response:
        served = self._served(request)
        if isinstance(served, JSONResponse):
            return served
        return JSONResponse(served.metadata())

    async def model_ready(self, request: Request) -> Response:
        served = self._served(request)
        if isinstance(served, JSONResponse):
            return served
        ready = self.state.ready
        return JSONResponse(
            {"name": served.name, "ready": ready}, status_code=200 if ready else 503
        )

    async def metrics(self, request: Request) -> Response:
        if self.shared is not None:
            return Response(self.shared.exposition(), media_type=CONTENT_TYPE_LATEST)
        return Response(
            generate_latest(self.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    async def not_allowed(self, request: Request) -> Response:
        # POST .../infer is served by InferRoute; anything reaching here used the wrong method.
        return _error(405, f"{request.method} is not allowed on {request.url.path}")


@contextlib.contextmanager
def _writing(shared: WorkerMetrics) -> Iterator[None]:
    """Keep this worker's metrics written for its siblings while the app runs."""
    task = asyncio.create_task(shared.keep_writing(), name="memoserve-worker-metrics")
    try:
        yield
    finally:
        task.cancel()
        shared.close()


def create_app(
    settings: ServingSettings,
    *,
    served: ServedModel | None = None,
    cache_factory: CacheFactory | None = None,
) -> InferRoute:
    """The ASGI app for ``settings``; a given ``served`` model skips fetching and loading, a
    given ``cache_factory`` replaces the Redis cache the settings describe. The gRPC server
    (``settings.grpc_enabled``) runs as long as the app's lifespan."""
    state = ServingState(settings, ServingMetrics(settings.model_name))
    shared = None
    if settings.worker_metrics_dir is not None:
        shared = WorkerMetrics(state.metrics.registry, settings.worker_metrics_dir, os.getpid())
    routes = Routes(state, shared)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            # Opened first, closed last: the data plane's spans export until it is gone.
            state.tracing = open_tracing(os.environ)
            if state.tracing is not None:
                stack.push_async_callback(asyncio.to_thread, state.tracing.shutdown)
            await stack.enter_async_context(running_dataplane(state, served, cache_factory))
            if shared is not None:
                stack.enter_context(_writing(shared))
            if settings.grpc_enabled:
                # Imported here: grpcio is loaded only by a server that serves gRPC.
                from memoserve_serving.grpc.server import serving_grpc

                # Stopped before the data plane closes, so in-flight RPCs can finish.
                await stack.enter_async_context(serving_grpc(state, GRACEFUL_SHUTDOWN_SECONDS))
            yield

    model = "/v2/models/{model}"
    version = model + "/versions/{version}"
    starlette = Starlette(
        routes=[
            Route("/v2/health/live", routes.live),
            Route("/v2/health/ready", routes.ready),
            Route("/v2", routes.server_metadata),
            Route(model, routes.model_metadata),
            Route(version, routes.model_metadata),
            Route(model + "/ready", routes.model_ready),
            Route(version + "/ready", routes.model_ready),
            Route(model + "/infer", routes.not_allowed),
            Route(version + "/infer", routes.not_allowed),
            Route("/metrics", routes.metrics),
        ],
        lifespan=lifespan,
    )
    # The hot path sits in front; ``.state`` lets the server drain and tests look inside.
    return InferRoute(state, starlette)
