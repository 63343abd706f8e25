"""ModelInfer on the wire bytes: the gRPC hot path, as infer_route.py is HTTP's.

grpcio hands the handler the request's bytes and sends the bytes it returns (identity
(de)serializers, handlers.py): no typed response message is built, and the request is parsed
once, by protobuf's C parser (upb, checked at start-up: upb.py), into the data plane's
``InferenceRequest`` (codec.decode_request).

Why not hash the wire bytes themselves for the cache key: the key is one for REST JSON, REST
binary and gRPC (cache/keys.py hashes the canonical request), and a request's wire bytes are not
canonical even among gRPC clients. They hold the request ``id`` and the model's name (not part of
the question), the tensor data as typed ``contents`` or as ``raw_input_contents`` (one entry,
two encodings), map entries (parameters) in any order, fields in any order, unknown fields,
packed or unpacked shapes, and transport-only parameters (``binary_data_output``...). Two equal
wire messages do mean one question, but keying on them would split each entry per client
library and transport. So the canonical key stays; what makes it cheap is taking the tensor
bytes from ``raw_input_contents`` as they are (no copy, no array: ``Tensor.from_raw``), and
remembering the decoded request of recent wire bytes (protocol/memo.py): decoding is a pure
function of the bytes, and a hit is a question asked before, most often in the very same bytes.

Each answer says how the cache answered in the ``x-memoserve-cache`` trailing metadata
(trailers end every call, an error too); ``cache-control: no-cache | no-store`` request metadata
works as the HTTP header does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, NoReturn

import grpc  # type: ignore[import-untyped]  # no stubs
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]  # no stubs

from memoserve_serving.cache.base import CacheResult
from memoserve_serving.grpc.codec import decode_request
from memoserve_serving.grpc.proto.open_inference_grpc_pb2 import ModelInferRequest
from memoserve_serving.grpc.wire import encode_response_bytes
from memoserve_serving.protocol.cache_control import cache_directives
from memoserve_serving.protocol.errors import BadRequest, InferenceError
from memoserve_serving.protocol.memo import Memo
from memoserve_serving.protocol.types import InferenceRequest
from memoserve_serving.state import ServingState
from memoserve_serving.tracing import MODEL, TRACE_HEADERS

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import RequestSpan, Tracing

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
# A call's span, as OpenTelemetry's RPC conventions name it.
SPAN_NAME = "inference.GRPCInferenceService/ModelInfer"
_SPAN_ATTRIBUTES = {
    "rpc.system": "grpc",
    "rpc.service": "inference.GRPCInferenceService",
    "rpc.method": "ModelInfer",
}
_TRACE_KEYS = frozenset(key.decode() for key in TRACE_HEADERS)
_parse = ModelInferRequest.FromString
_NAME = ModelInferRequest.DESCRIPTOR.full_name
# Requests up to this size are remembered decoded (protocol/memo.py), this many of them.
MEMO_MAX_REQUEST_BYTES = 4096
MEMO_REQUESTS = 1024
Decoded = tuple[str, str | None, InferenceRequest, bool]  # model, version, request, raw


def decode(data: bytes) -> Decoded:
    """The request's model and version, the request, and whether it sent raw contents."""
    try:
        message = _parse(data)
    except DecodeError as exc:
        reason = str(exc) or "it does not decode"
        raise BadRequest(f"the request is not a valid {_NAME}: {reason}") from None
    request, raw = decode_request(message)
    return message.model_name, message.model_version or None, request, raw


def status_code(error: InferenceError) -> grpc.StatusCode:
    return STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)


def _grpc_status(http_status: int) -> tuple[str, int]:
    """The span attribute for a call that ended as ``http_status`` would have."""
    code = grpc.StatusCode.OK if http_status == 200 else STATUS_CODES.get(http_status)
    return "rpc.grpc.status_code", (code or grpc.StatusCode.INTERNAL).value[0]


def _span(tracing: Tracing, context: Any) -> RequestSpan | None:
    carrier = {
        key: value
        for key, value in context.invocation_metadata() or ()
        if key in _TRACE_KEYS and isinstance(value, str)
    }
    return tracing.server_span(SPAN_NAME, carrier, lambda: dict(_SPAN_ATTRIBUTES), _grpc_status)


async def abort(context: Any, error: InferenceError) -> NoReturn:
    await context.abort(status_code(error), str(error))
    raise AssertionError("abort returned")  # it raises; this tells the type checker


class ModelInferHandler:
    """``inference.GRPCInferenceService/ModelInfer``: request bytes in, response bytes out."""

    __slots__ = ("_decoded", "state")

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self._decoded: Memo[bytes, Decoded] = Memo(MEMO_REQUESTS)

    async def handle(self, data: bytes, context: Any) -> bytes:
        state = self.state
        metrics = state.metrics
        started = time.perf_counter()
        metrics.inflight += 1
        result = CacheResult.BYPASS  # a request that never reached the cache
        status = 200  # the HTTP equivalent, for the metric HTTP requests share
        model = ""
        span = None if state.tracing is None else _span(state.tracing, context)
        try:
            if span is None or not span.recording:
                model, version, decoded, raw = self._decode(data)
            else:
                with span.child("decode"):
                    model, version, decoded, raw = self._decode(data)
                span.span.set_attribute(MODEL, model)
            dataplane = state.dataplane_for(model, version)
            read = write = True
            for key, value in context.invocation_metadata() or ():
                if key == "cache-control":
                    read, write = cache_directives(value.encode())
            # The client's deadline bounds a cache front's call upstream.
            remaining = context.time_remaining()
            deadline = None if remaining is None else asyncio.get_running_loop().time() + remaining
            answer, result = await dataplane.infer(
                decoded, read=read, write=write, deadline=deadline
            )
            response = encode_response_bytes(answer, raw)
        except InferenceError as exc:
            status = exc.status
            if status >= 500:
                log.error("infer failed: %s", exc, extra={"model": model})
            context.set_trailing_metadata(_CACHE[result])
            await abort(context, exc)
        except Exception:
            # A bug of ours: the traceback in the log, a plain INTERNAL to the client.
            log.exception("infer failed unexpectedly", extra={"model": model})
            status = 500
            context.set_trailing_metadata(_CACHE[result])
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
        finally:
            metrics.inflight -= 1
            metrics.requests.observe(result, status, time.perf_counter() - started)
            if span is not None:
                span.end(status, result.value)
        # Trailing only: initial metadata sent ahead of the answer is one more batch of
        # operations per call, ~12 % of a hit's CPU (bench/serving/grpc_bench.py).
        context.set_trailing_metadata(_CACHE[result])
        return response

    def _decode(self, data: bytes) -> Decoded:
        if len(data) <= MEMO_MAX_REQUEST_BYTES:
            return self._decoded.get(data, decode)
        return decode(data)
