"""A lean HTTP/1.1 client for the front's upstream: keep-alive connections, one write a request.

Why not aiohttp: a miss through the front cost 197 us of the front's CPU with aiohttp's
client against 43 us for a hit (docs/performance.md, front_bench.py); most of that was its
machinery per request (tracing, timeouts, multidicts, streams, several writes). Talking to one
known v2 server needs much less: the request is built as bytes and written once, the response
is parsed by httptools (the parser uvicorn already uses here, chunked bodies included), and a
connection goes back to the pool when the server keeps it alive. The same reasoning made the
cache's Redis client (cache/resp.py).

One request at a time per connection (no pipelining: a v2 server answers a connection's
requests in order, so one slow model run would hold up the misses queued behind it); at most
``limit`` connections are kept idle. A request on a reused connection that the server had closed
(its keep-alive timeout) is sent once more on a new one, before any answer was read: nothing was
run twice. The time limit is a timer on the loop that fails the waiting request, not
``asyncio.timeout`` around it, which costs several µs more per call (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # names lower-cased
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection; ``send`` writes a request and resolves with its response."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self.started = False  # some of the current response has arrived
        self.reused = False
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"invalid HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection closed{f': {exc}' if exc else ''}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        response = Response(self._parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body, self.started = {}, [], False
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # ours
    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self._transport is not None
        assert self._waiter is None  # one request at a time
        self._waiter = self._loop.create_future()
        self._transport.write(request)
        return self._waiter

    def expire(self) -> None:
        """The time limit passed: the request fails, and the connection, mid-answer, closes."""
        self._fail(TimeoutError())
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Http1Pool:
    """Connections to one origin (``http://host:port`` or ``https://...``)."""

    def __init__(self, origin: str, *, limit: int) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        host = self._host if ":" not in self._host else f"[{self._host}]"
        self._host_header = f"{host}:{self._port}".encode()
        self._limit = limit
        self._idle: deque[_Connection] = deque()

    async def request(
        self,
        method: bytes,
        path: bytes,
        body: bytes = b"",
        headers: tuple[tuple[bytes, bytes], ...] = (),
        *,
        timeout: float,  # noqa: ASYNC109  # a loop timer: cheaper than asyncio.timeout per call
    ) -> Response:
        """The response within ``timeout`` seconds; TimeoutError past them, ConnectionError or
        another OSError when there is none. A connection left mid-response (a timeout, a cancel)
        is closed, not reused."""
        head = [method, b" ", path, b" HTTP/1.1\r\nHost: ", self._host_header, b"\r\n"]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        head += (b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        request = b"".join(head)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            connection = await self._connection(deadline)
            timer = loop.call_at(deadline, connection.expire)
            try:
                response = await connection.send(request)
            except ConnectionError:
                if connection.reused and not connection.started:
                    continue  # closed while idle: try a fresh connection
                raise
            except BaseException:  # a timeout or a cancel mid-response: not reusable
                connection.close()
                raise
            finally:
                timer.cancel()
            if not connection.closed and len(self._idle) < self._limit:
                connection.reused = True
                self._idle.append(connection)
            return response

    async def _connection(self, deadline: float) -> _Connection:
        while self._idle:
            connection = self._idle.pop()  # the most recent: the least likely to be closed
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline):  # rare (a new connection): the usual way
            _, protocol = await loop.create_connection(
                lambda: _Connection(loop), self._host, self._port, ssl=self._ssl
            )
        return protocol

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
