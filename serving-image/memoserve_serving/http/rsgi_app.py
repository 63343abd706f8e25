"""The HTTP app as an RSGI app, for granian (``http_transport: granian``).

Infer requests go straight to :class:`~memoserve_serving.http.infer_handler.InferHandler`, as
under uvicorn; everything else (health, metadata, ``/metrics``: small answers, never streamed)
to the same Starlette app, through :meth:`RsgiApp.asgi`, which runs it as ASGI once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Message

from memoserve_serving.cache.base import CacheResult
from memoserve_serving.http.infer_handler import (
    CACHE_HEADER,
    JSON_LENGTH_HEADER,
    InferHandler,
    InferReply,
    RequestHead,
    header_int,
    too_large,
)
from memoserve_serving.http.infer_route import InferRoute
from memoserve_serving.protocol.cache_control import cache_directives
from memoserve_serving.protocol.errors import InferenceError
from memoserve_serving.scheduling import threads_started_as_batch
from memoserve_serving.tracing import TRACE_HEADERS

_CONTENT_JSON = ("content-type", "application/json")
_CONTENT_BINARY = ("content-type", "application/octet-stream")
_CACHE = {result: (CACHE_HEADER, result.value) for result in CacheResult}
_TRACE_HEADERS = tuple(name.decode() for name in TRACE_HEADERS)


class Headers(Protocol):
    """granian's RSGIHeaders: names are lower case."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def items(self) -> list[tuple[str, str]]: ...


class Scope(Protocol):
    proto: str
    http_version: str
    scheme: str
    method: str
    path: str
    query_string: str
    client: str
    server: str

    @property
    def headers(self) -> Headers: ...


class HTTPProtocol(Protocol):
    async def __call__(self) -> bytes: ...
    def __aiter__(self) -> Any: ...
    async def client_disconnect(self) -> None: ...
    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...


def read_head(headers: Headers) -> RequestHead:
    json_length = headers.get(JSON_LENGTH_HEADER)
    if json_length is not None:
        json_length = header_int(json_length, "Inference-Header-Content-Length")
    content_length = headers.get("content-length")
    content_length = -1 if content_length is None else header_int(content_length, "Content-Length")
    cache_control = headers.get("cache-control")
    if cache_control is None:
        return json_length, content_length, True, True
    return json_length, content_length, *cache_directives(cache_control.encode("latin-1"))


def response_headers(reply: InferReply) -> list[tuple[str, str]]:
    _, _, binary_json_length, retry_after, result = reply
    headers = [_CONTENT_JSON, _CACHE[result]]
    if binary_json_length is not None:
        headers[0] = _CONTENT_BINARY
        headers.append((JSON_LENGTH_HEADER, str(binary_json_length)))
    if retry_after is not None:
        headers.append(("retry-after", str(retry_after)))
    return headers


class RsgiApp:
    """``route``'s infer path and fallback app, served over RSGI."""

    def __init__(self, route: InferRoute, on_serving: Callable[[], None] | None = None) -> None:
        self.handler: InferHandler = route.handler
        self.fallback: ASGIApp = route.fallback
        self.on_serving = on_serving

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # granian calls this just before it starts its I/O threads, in this thread and loop
        # step: they start SCHED_BATCH, as the native gRPC front's do (an I/O thread woken
        # for each answer would otherwise preempt the event loop on a shared core); this
        # thread's policy is put back once the step is over.
        batch = contextlib.ExitStack()
        batch.enter_context(threads_started_as_batch("HTTP"))
        loop.call_soon(batch.close)
        if self.on_serving is not None:
            loop.call_soon(self.on_serving)

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        handler = self.handler
        if scope.method == "POST" and (target := handler.target(scope.path)) is not None:
            headers = scope.headers
            max_body = handler.max_body
            try:
                head = read_head(headers)
                body = await _read_body(proto, head[1], max_body)
            except InferenceError as exc:
                reply = handler.refuse(exc)
            else:
                carrier = None if handler.state.tracing is None else _carrier(headers)
                reply = await handler.answer(target, scope.path, head, body, carrier)
            proto.response_bytes(reply[0], response_headers(reply), reply[1])
            return
        await self.asgi(scope, proto)

    async def asgi(self, scope: Scope, proto: HTTPProtocol) -> None:
        """One request through the ASGI app, its answer collected and sent whole."""
        try:
            length = scope.headers.get("content-length")
            size = -1 if length is None else header_int(length, "Content-Length")
            body = await _read_body(proto, size, self.handler.max_body)
        except InferenceError as exc:  # not an infer request: not counted as one
            proto.response_bytes(exc.status, [_CONTENT_JSON], orjson.dumps({"error": str(exc)}))
            return
        host, _, port = scope.client.rpartition(":")
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()]
        asgi_scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": scope.path,
            "raw_path": scope.path.encode(),
            "root_path": "",
            "query_string": scope.query_string.encode("latin-1"),
            "headers": headers,
            "client": (host, int(port)) if port.isdigit() else None,
            "server": None,
        }
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await proto.client_disconnect()
            return {"type": "http.disconnect"}

        start: Message = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.fallback(asgi_scope, receive, send)
        pairs = start.get("headers", ())
        answer_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]
        proto.response_bytes(start.get("status", 500), answer_headers, b"".join(chunks))


async def _read_body(proto: HTTPProtocol, content_length: int, max_body: int) -> bytes:
    """The whole body, at most ``max_body`` bytes (-1: no Content-Length, chunked)."""
    if content_length > max_body:
        raise too_large(max_body)
    if content_length >= 0:  # granian reads just that many bytes
        return await proto()
    # Without Content-Length a chunk at a time: refused once past the limit, not after it all
    # arrived.
    chunks: list[bytes] = []
    size = 0
    async for chunk in proto:
        size += len(chunk)
        if size > max_body:
            raise too_large(max_body)
        chunks.append(chunk)
    return b"".join(chunks)  # a single chunk comes back as it is, not copied


def _carrier(headers: Headers) -> dict[str, str]:
    return {name: value for name in _TRACE_HEADERS if (value := headers.get(name)) is not None}
