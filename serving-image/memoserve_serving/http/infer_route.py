"""The infer hot path as a plain ASGI handler (uvicorn), in front of the Starlette app that
serves everything else. The work is :class:`~memoserve_serving.http.infer_handler.InferHandler`'s;
this reads ASGI's headers and body and sends the reply as two ASGI messages."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from memoserve_serving.protocol.cache_control import cache_directives
from memoserve_serving.protocol.errors import BadRequest, InferenceError
from memoserve_serving.state import ServingState
from memoserve_serving.tracing import TRACE_HEADERS

_CONTENT_JSON = (b"content-type", b"application/json")
_CONTENT_BINARY = (b"content-type", b"application/octet-stream")
_CACHE = {result: (CACHE_HEADER.encode(), result.value.encode()) for result in CacheResult}
_JSON_LENGTH = JSON_LENGTH_HEADER.encode()


def read_head(headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    json_length: int | None = None
    content_length = -1
    read = write = True
    for name, value in headers:
        if name == _JSON_LENGTH:
            json_length = header_int(value, "Inference-Header-Content-Length")
        elif name == b"content-length":
            content_length = header_int(value, "Content-Length")
        elif name == b"cache-control":
            read, write = cache_directives(value)
    return json_length, content_length, read, write


def response_headers(reply: InferReply) -> list[tuple[bytes, bytes]]:
    _, payload, binary_json_length, retry_after, result = reply
    headers = [_CONTENT_JSON, (b"content-length", b"%d" % len(payload)), _CACHE[result]]
    if binary_json_length is not None:
        headers[0] = _CONTENT_BINARY
        headers.append((_JSON_LENGTH, b"%d" % binary_json_length))
    if retry_after is not None:
        headers.append((b"retry-after", b"%d" % retry_after))
    return headers


class InferRoute:
    """Serves infer requests for the state's model; hands every other request to ``fallback``."""

    def __init__(self, state: ServingState, fallback: ASGIApp) -> None:
        self.state = state
        self.fallback = fallback
        self.handler = InferHandler(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.fallback(scope, receive, send)
        path = scope["path"]
        handler = self.handler
        target = handler.target(path)
        if target is None:
            return await self.fallback(scope, receive, send)
        headers = scope["headers"]
        max_body = handler.max_body
        try:
            head = read_head(headers)
            if head[1] > max_body:
                raise too_large(max_body)
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body = message.get("body", b"")
                if len(body) > max_body:
                    raise too_large(max_body)
            else:
                body = await _read_more(message, receive, max_body)
        except InferenceError as exc:
            reply = handler.refuse(exc)
        else:
            carrier = None if self.state.tracing is None else _carrier(headers)
            reply = await handler.answer(target, path, head, body, carrier)
        await send(
            {"type": "http.response.start", "status": reply[0], "headers": response_headers(reply)}
        )
        await send({"type": "http.response.body", "body": reply[1]})


def _carrier(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in TRACE_HEADERS
    }


async def _read_more(first: Message, receive: Receive, max_body: int) -> bytes:
    """The body of a request that arrives in several messages (or a disconnect)."""
    chunks: list[bytes] = []
    size = 0
    message = first
    while True:
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise too_large(max_body)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()
