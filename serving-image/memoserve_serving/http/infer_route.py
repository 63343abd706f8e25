"""POST /v2/models/{name}[/versions/{version}]/infer as a plain ASGI handler.

This is the hot path: a cache hit must cost little more than the HTTP round trip, and a
framework's routing and Request/Response objects cost about as much as the whole hit
(see docs/performance.md). Everything else goes to the Starlette app behind it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memoserve_serving.cache.base import CacheResult
from memoserve_serving.protocol.cache_control import cache_directives
from memoserve_serving.protocol.errors import (
    BadRequest,
    InferenceError,
    PayloadTooLarge,
)
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.response import encode_response
from memoserve_serving.state import ServingState
from memoserve_serving.tracing import MODEL, TRACE_HEADERS

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import RequestSpan

log = logging.getLogger(__name__)

CACHE_HEADER = b"x-memoserve-cache"
_CONTENT_JSON = (b"content-type", b"application/json")
_CONTENT_BINARY = (b"content-type", b"application/octet-stream")
_CACHE = {result: (CACHE_HEADER, result.value.encode()) for result in CacheResult}
_INTERNAL_ERROR = b'{"error": "internal server error"}'
# A request's span is named after the route, not the path (OpenTelemetry's HTTP conventions).
_SPAN_NAME = "POST /v2/models/{name}/infer"


def _infer_target(path: str) -> tuple[str, str | None] | None:
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


class InferRoute:
    """Serves infer requests for the state's model; hands every other request to ``fallback``."""

    def __init__(self, state: ServingState, fallback: ASGIApp) -> None:
        self.state = state
        self.fallback = fallback
        self.max_body = state.settings.max_body_bytes
        # The served model's own infer paths, looked up before any parsing: nearly every
        # request asks for one of them.
        name, version = state.settings.model_name, state.settings.model_version
        self._own_paths: dict[str, tuple[str, str | None]] = {
            f"/v2/models/{name}/infer": (name, None)
        }
        if version is not None:
            self._own_paths[f"/v2/models/{name}/versions/{version}/infer"] = (name, version)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.fallback(scope, receive, send)
        path = scope["path"]
        target = self._own_paths.get(path) or _infer_target(path)
        if target is None:
            return await self.fallback(scope, receive, send)
        # One coroutine for the whole request: on a hit, every extra await layer is a
        # measurable share of the work (docs/performance.md).
        metrics = self.state.metrics
        started = time.perf_counter()
        metrics.inflight += 1
        result = CacheResult.BYPASS  # a request that never reached the cache
        status = 200
        retry_after: int | None = None
        span = None if self.state.tracing is None else self._span(scope, target[0])
        try:
            dataplane = self.state.dataplane_for(*target)
            json_length: int | None = None
            content_length = -1
            read = write = True
            for name, value in scope["headers"]:
                if name == b"inference-header-content-length":
                    json_length = _header_int(value, "Inference-Header-Content-Length")
                elif name == b"content-length":
                    content_length = _header_int(value, "Content-Length")
                elif name == b"cache-control":
                    read, write = cache_directives(value)
            if content_length > self.max_body:
                raise PayloadTooLarge(f"request body exceeds {self.max_body} bytes")
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body = message.get("body", b"")
                if len(body) > self.max_body:
                    raise PayloadTooLarge(f"request body exceeds {self.max_body} bytes")
            else:
                body = await self._read_more(message, receive)
            if span is None or not span.recording:
                request = decode_request(body, json_length)
            else:
                with span.child("decode"):
                    request = decode_request(body, json_length)
            response, result = await dataplane.infer(request, read=read, write=write)
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
        try:
            headers = [_CONTENT_JSON, (b"content-length", b"%d" % len(payload)), _CACHE[result]]
            if binary_json_length is not None:
                headers[0] = _CONTENT_BINARY
                headers.append((b"inference-header-content-length", b"%d" % binary_json_length))
            if retry_after is not None:
                headers.append((b"retry-after", b"%d" % retry_after))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        finally:
            metrics.inflight -= 1
            metrics.requests.observe(result, status, time.perf_counter() - started)
            if span is not None:
                span.end(status, result.value)

    def _span(self, scope: Scope, model: str) -> RequestSpan | None:
        assert self.state.tracing is not None
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in TRACE_HEADERS
        }
        return self.state.tracing.server_span(
            _SPAN_NAME,
            carrier,
            lambda: {"http.request.method": "POST", "url.path": scope["path"], MODEL: model},
        )

    async def _read_more(self, first: Message, receive: Receive) -> bytes:
        """The body of a request that arrives in several messages (or a disconnect)."""
        chunks: list[bytes] = []
        size = 0
        message = first
        while True:
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge(f"request body exceeds {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()


def _header_int(value: bytes, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"header {name} is not an integer: {value[:32]!r}") from None
    if number < 0:
        raise BadRequest(f"header {name} is negative")
    return number
