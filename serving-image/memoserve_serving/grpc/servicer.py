"""``inference.GRPCInferenceService``: the v2 RPCs other than ModelInfer (infer.py), answered
from the shared serving state with typed messages (they are rare: probes, metadata).
"""

from __future__ import annotations

from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs

from memoserve_serving import EXTENSIONS, SERVER_NAME, __version__
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.grpc.infer import abort
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import (
    GRPCInferenceServiceServicer,
)
from memoserve_serving.protocol.errors import InferenceError, ModelNotReady
from memoserve_serving.state import ServingState


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
            await abort(context, exc)

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
            await abort(context, ModelNotReady(f"model {request.name!r} is not ready"))
        meta = served.metadata()
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**spec) for spec in meta["inputs"]],
            outputs=[tensor(**spec) for spec in meta["outputs"]],
        )
