"""POST /v2/models/{name}[/versions/{version}]/infer, whatever HTTP server carries it.

This is the hot path: a cache hit must cost little more than the HTTP round trip, and a
framework's routing and Request/Response objects cost about as much as the whole hit (see
docs/performance.md). Each transport (``infer_route``: ASGI under uvicorn, ``rsgi_app``: RSGI
under granian) reads its own headers into a :class:`RequestHead`, hands over how to read the
body, and writes the :class:`InferReply` in its own terms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from memoserve_serving.cache.base import CacheResult
from memoserve_serving.protocol.errors import BadRequest, InferenceError, PayloadTooLarge
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.response import encode_response
from memoserve_serving.state import ServingState
from memoserve_serving.tracing import MODEL

log = logging.getLogger(__name__)

CACHE_HEADER = "x-memoserve-cache"
JSON_LENGTH_HEADER = "inference-header-content-length"
_INTERNAL_ERROR = b'{"error": "internal server error"}'
# A request's span is named after the route, not the path (OpenTelemetry's HTTP conventions).
_SPAN_NAME = "POST /v2/models/{name}/infer"

Target = tuple[str, str | None]  # (model, version)
# The whole body, at most that many bytes; True: Content-Length said how many (within the limit).
ReadBody = Callable[[int, bool], Awaitable[bytes]]


@dataclass(slots=True)
class RequestHead:
    """What the hot path reads from a request's headers."""

    json_length: int | None = None  # Inference-Header-Content-Length: a binary request
    content_length: int = -1  # -1: not given (chunked)
    read: bool = True  # Cache-Control: no-cache -> False
    write: bool = True  # Cache-Control: no-store -> False


class InferReply(NamedTuple):
    status: int
    payload: bytes
    binary_json_length: int | None  # set: a binary answer (octet-stream, JSON header first)
    retry_after: int | None
    result: CacheResult


def header_int(value: bytes | str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"header {name} is not an integer: {value[:32]!r}") from None
    if number < 0:
        raise BadRequest(f"header {name} is negative")
    return number


def too_large(max_body: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds {max_body} bytes")


def infer_target(path: str) -> Target | None:
    """(model, version) for an infer path, else None."""
    parts = path.split("/")
    # ['', 'v2', 'models', name, 'infer'] or [..., name, 'versions', v, 'infer']
    if len(parts) == 5 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "infer":
        return parts[3], None
    if (
        len(parts) == 7
        and parts[1] == "v2"
        and parts[2] == "models"
        and parts[4] == "versions"
        and parts[6] == "infer"
    ):
        return parts[3], parts[5]
    return None


class InferHandler:
    """Answers infer requests for the state's model, in one coroutine per request: on a hit,
    every extra await layer is a measurable share of the work (docs/performance.md)."""

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self.max_body = state.settings.max_body_bytes
        # The served model's own infer paths, looked up before any parsing: nearly every
        # request asks for one of them.
        name, version = state.settings.model_name, state.settings.model_version
        self._own_paths: dict[str, Target] = {f"/v2/models/{name}/infer": (name, None)}
        if version is not None:
            self._own_paths[f"/v2/models/{name}/versions/{version}/infer"] = (name, version)

    def target(self, path: str) -> Target | None:
        return self._own_paths.get(path) or infer_target(path)

    async def answer(
        self,
        target: Target,
        path: str,
        read_head: Callable[[], RequestHead],
        read_body: ReadBody,
        trace_carrier: Callable[[], dict[str, str]],
    ) -> InferReply:
        """The reply to one infer request; never raises (errors are replies, and logged)."""
        state = self.state
        metrics = state.metrics
        started = time.perf_counter()
        metrics.inflight += 1
        result = CacheResult.BYPASS  # a request that never reached the cache
        status = 200
        retry_after: int | None = None
        span = None
        if state.tracing is not None:
            span = state.tracing.server_span(
                _SPAN_NAME,
                trace_carrier(),
                lambda: {"http.request.method": "POST", "url.path": path, MODEL: target[0]},
            )
        try:
            dataplane = state.dataplane_for(*target)
            head = read_head()
            if head.content_length > self.max_body:
                raise too_large(self.max_body)
            body = await read_body(self.max_body, head.content_length >= 0)
            if span is None or not span.recording:
                request = decode_request(body, head.json_length)
            else:
                with span.child("decode"):
                    request = decode_request(body, head.json_length)
            response, result = await dataplane.infer(request, read=head.read, write=head.write)
            payload, binary_json_length = encode_response(response, request)
        except InferenceError as exc:
            status = exc.status
            if status >= 500:
                log.error("infer failed: %s", exc, extra={"model": target[0]})
            payload, binary_json_length = orjson.dumps({"error": str(exc)}), None
            retry_after = exc.retry_after
        except Exception:
            # A bug of ours: say so in the log with the traceback, and in JSON to the client.
            log.exception("infer failed unexpectedly", extra={"model": target[0]})
            status, payload, binary_json_length = 500, _INTERNAL_ERROR, None
        finally:
            metrics.inflight -= 1
        metrics.requests.observe(result, status, time.perf_counter() - started)
        if span is not None:
            span.end(status, result.value)
        return InferReply(status, payload, binary_json_length, retry_after, result)
