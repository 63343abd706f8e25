"""POST /v2/models/{name}[/versions/{version}]/infer, whatever HTTP server carries it.

This is the hot path: a cache hit must cost little more than the HTTP round trip, and a
framework's routing and Request/Response objects cost about as much as the whole hit (see
docs/performance.md). Each transport (``infer_route``: ASGI under uvicorn, ``rsgi_app``: RSGI
under granian) reads the request's headers into a :data:`RequestHead` and its body in its own
terms, hands both to :meth:`InferHandler.answer` (or a refusal to :meth:`InferHandler.refuse`),
and writes the :data:`InferReply` back. Heads and replies are plain tuples: on a hit, building
objects for them cost more than anything else the split added.
"""

from __future__ import annotations

import logging
import time

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
# (Inference-Header-Content-Length or None, Content-Length or -1, Cache-Control allows reading
# the cache, ... allows writing it)
RequestHead = tuple[int | None, int, bool, bool]
# (status, payload, the JSON header's length of a binary answer or None, Retry-After or None,
# what the cache did)
InferReply = tuple[int, bytes, int | None, int | None, CacheResult]


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
        head: RequestHead,
        body: bytes,
        trace_carrier: dict[str, str] | None = None,
    ) -> InferReply:
        """The reply to one infer request; never raises (errors are replies, and logged).
        ``trace_carrier``: the request's trace headers, when tracing is on."""
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
                trace_carrier or {},
                lambda: {"http.request.method": "POST", "url.path": path, MODEL: target[0]},
            )
        try:
            dataplane = state.dataplane_for(*target)
            if span is None or not span.recording:
                request = decode_request(body, head[0])
            else:
                with span.child("decode"):
                    request = decode_request(body, head[0])
            response, result = await dataplane.infer(request, read=head[2], write=head[3])
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
        return status, payload, binary_json_length, retry_after, result

    def refuse(self, exc: InferenceError) -> InferReply:
        """The reply to a request refused before it was read whole (its headers, its size)."""
        self.state.metrics.requests.observe(CacheResult.BYPASS, exc.status, 0.0)
        return exc.status, orjson.dumps({"error": str(exc)}), None, None, CacheResult.BYPASS
