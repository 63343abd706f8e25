"""``inference.GRPCInferenceService``: the v2 RPCs, answered from the shared serving state.

ModelInfer goes through the same ``DataPlane.infer`` as HTTP's infer route: validation, the
cache, batching and the model are the data plane's; this module only translates. Each infer
answer says how the cache answered in the ``x-memoserve-cache`` trailing metadata (trailers end
every call, an error too); ``cache-control: no-cache | no-store`` request metadata works as the
HTTP header does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NoReturn

import grpc  # type: ignore[import-untyped]  # no stubs

from memoserve_serving import EXTENSIONS, SERVER_NAME, __version__
from memoserve_serving.cache.base import CacheResult
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.grpc.codec import decode_request, encode_response
from memoserve_serving.grpc.handlers import Malformed
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import (
    GRPCInferenceServiceServicer,
)
from memoserve_serving.protocol.cache_control import cache_directives
from memoserve_serving.protocol.errors import BadRequest, InferenceError, ModelNotReady
from memoserve_serving.state import ServingState

log = logging.getLogger(__name__)

CACHE_METADATA = "x-memoserve-cache"
_CACHE = {result: ((CACHE_METADATA, result.value),) for result in CacheResult}
# The errors' HTTP statuses as gRPC codes; anything else (a model failure) is INTERNAL.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    502: grpc.StatusCode.UNAVAILABLE,  # the cache front's upstream failed: a retry may help
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: InferenceError) -> grpc.StatusCode:
    return STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)


async def _abort(context: grpc.aio.ServicerContext, error: InferenceError) -> NoReturn:
    await context.abort(status_code(error), str(error))
    raise AssertionError("abort returned")  # it raises; this tells the type checker


class InferenceServicer(GRPCInferenceServiceServicer):
    def __init__(self, state: ServingState) -> None:
        self.state = state

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        return pb.ServerReadyResponse(ready=self.state.ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        return pb.ServerMetadataResponse(
            name=SERVER_NAME, version=__version__, extensions=EXTENSIONS
        )

    async def _served(
        self, name: str, version: str, context: grpc.aio.ServicerContext
    ) -> ServedModel | None:
        """The model asked for (None while it loads or the server drains); NOT_FOUND else."""
        try:
            return self.state.dataplane_for(name, version or None).served
        except ModelNotReady:
            return None
        except InferenceError as exc:
            await _abort(context, exc)

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        served = await self._served(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=served is not None and self.state.ready)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        served = await self._served(request.name, request.version, context)
        if served is None:
            await _abort(context, ModelNotReady(f"model {request.name!r} is not ready"))
        meta = served.metadata()
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**spec) for spec in meta["inputs"]],
            outputs=[tensor(**spec) for spec in meta["outputs"]],
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest | Malformed, context: grpc.aio.ServicerContext
    ) -> Any:
        metrics = self.state.metrics
        started = time.perf_counter()
        metrics.inflight += 1
        result = CacheResult.BYPASS  # a request that never reached the cache
        status = 200  # the HTTP equivalent, for the metric HTTP requests share
        model = "" if isinstance(request, Malformed) else request.model_name
        try:
            if isinstance(request, Malformed):
                raise BadRequest(str(request))
            dataplane = self.state.dataplane_for(request.model_name, request.model_version or None)
            read = write = True
            for key, value in context.invocation_metadata() or ():
                if key == "cache-control":
                    read, write = cache_directives(value.encode())
            decoded, raw = decode_request(request)
            # The client's deadline bounds a cache front's call upstream.
            remaining = context.time_remaining()
            deadline = None if remaining is None else asyncio.get_running_loop().time() + remaining
            answer, result = await dataplane.infer(
                decoded, read=read, write=write, deadline=deadline
            )
            response = encode_response(answer, raw)
        except InferenceError as exc:
            status = exc.status
            if status >= 500:
                log.error("infer failed: %s", exc, extra={"model": model})
            context.set_trailing_metadata(_CACHE[result])
            await _abort(context, exc)
        except Exception:
            # A bug of ours: the traceback in the log, a plain INTERNAL to the client.
            log.exception("infer failed unexpectedly", extra={"model": model})
            status = 500
            context.set_trailing_metadata(_CACHE[result])
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
        finally:
            metrics.inflight -= 1
            metrics.requests.observe(result, status, time.perf_counter() - started)
        # Trailing only: initial metadata sent ahead of the answer is one more batch of
        # operations per call, ~12 % of a hit's CPU (bench/serving/grpc_bench.py).
        context.set_trailing_metadata(_CACHE[result])
        return response
