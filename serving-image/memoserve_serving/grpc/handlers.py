"""The inference service's method handlers.

ModelInfer is served on bytes (identity (de)serializers: infer.py parses the request itself and
returns the response's wire bytes). The other methods use the generated messages and
serializers, but a request that does not parse reaches the servicer as :class:`Malformed`
instead of failing in grpcio, whose answer to a deserializer that raises is a bare UNKNOWN: the
servicer answers it INVALID_ARGUMENT naming the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]  # no stubs

from memoserve_serving.grpc.infer import ModelInferHandler
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb

SERVICE_NAME = "inference.GRPCInferenceService"
MODEL_INFER_PATH = f"/{SERVICE_NAME}/ModelInfer"

Method = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Bytes that are not a ``message_type``: why, as protobuf says it."""

    message_type: str
    reason: str

    def __str__(self) -> str:
        return f"the request is not a valid {self.message_type}: {self.reason}"


def _parse_or_explain(message: Any) -> Callable[[bytes], Any]:
    name = message.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except DecodeError as exc:
            return Malformed(name, str(exc) or "it does not decode")

    return parse


def _refusing_malformed(method: Method) -> Method:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
        return await method(request, context)

    return handle


def inference_handlers(servicer: Any, infer: ModelInferHandler) -> dict[str, Any]:
    """The method handlers of ``inference.GRPCInferenceService`` (all of the proto's: its
    descriptor lists them): ``infer`` for ModelInfer, ``servicer``'s methods for the rest."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    handlers = {}
    for method in service.methods:
        if method.name == "ModelInfer":
            # No (de)serializers: bytes in, bytes out.
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(infer.handle)
            continue
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _refusing_malformed(getattr(servicer, method.name)),
            request_deserializer=_parse_or_explain(request_type),
            response_serializer=response_type.SerializeToString,
        )
    return handlers


def add_inference_service(servicer: Any, infer: ModelInferHandler, server: Any) -> None:
    """Serve ``inference.GRPCInferenceService`` on ``server`` (grpc.aio's or one with its API)."""
    handlers = inference_handlers(servicer, infer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
