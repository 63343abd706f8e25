"""The front's HTTP/1.1 client (upstream/http1.py) against real TCP peers: a small asyncio
HTTP server written here, which can answer in the ways servers do (a length, chunks,
``Connection: close``, closing an idle connection), and memoserve's own server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from memoserve_serving.upstream.http1 import Http1Pool
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

Answer = Callable[[bytes, int], bytes]  # (request head, request number) -> raw response
Start = Callable[..., "asyncio.Future[Peer]"]


class Peer:
    """Reads each request (head + Content-Length body) and writes what ``answer`` says; counts
    connections; ``close_after`` closes each connection after that many answers."""

    def __init__(self, answer: Answer, close_after: int | None = None) -> None:
        self.answer, self.close_after = answer, close_after
        self.connections = 0
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests += 1
                writer.write(self.answer(head, self.requests))
                await writer.drain()
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def peer_factory() -> AsyncIterator[Callable[..., asyncio.Future[Peer]]]:
    started: list[Peer] = []

    async def start(answer: Answer, close_after: int | None = None) -> Peer:
        peer = Peer(answer, close_after)
        peer.server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
        started.append(peer)
        return peer

    yield start  # type: ignore[misc]
    for peer in started:
        assert peer.server is not None
        peer.server.close()


def length(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body), b"".join(h + b"\r\n" for h in extra), body,
    )  # fmt: skip


async def test_keep_alive_reuses_one_connection(
    peer_factory: Start,
) -> None:
    peer = await peer_factory(lambda head, n: length(b"answer %d" % n))
    pool = Http1Pool(peer.origin, limit=4)
    bodies = []
    for _ in range(3):
        bodies.append((await pool.request(b"POST", b"/x", b"{}", timeout=0.1)).body)
        await asyncio.sleep(0.15)  # past the time limit: a request's timer ends with its answer
    assert bodies == [b"answer 1", b"answer 2", b"answer 3"]
    assert peer.connections == 1
    await pool.close()


async def test_chunked_answers_and_headers(
    peer_factory: Start,
) -> None:
    chunked = (
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
        b"Inference-Header-Content-Length: 7\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
    )
    peer = await peer_factory(lambda head, n: chunked)
    pool = Http1Pool(peer.origin, limit=4)
    response = await pool.request(b"POST", b"/x", b"{}", timeout=10)
    assert (response.status, response.body) == (400, b"abcdefg")
    assert response.headers[b"inference-header-content-length"] == b"7"
    await pool.close()


async def test_connection_close_is_not_reused(
    peer_factory: Start,
) -> None:
    peer = await peer_factory(lambda head, n: length(b"ok", b"Connection: close"), close_after=1)
    pool = Http1Pool(peer.origin, limit=4)
    for _ in range(2):
        assert (await pool.request(b"GET", b"/x", timeout=10)).body == b"ok"
    assert peer.connections == 2
    await pool.close()


async def test_an_idle_connection_the_server_closed_is_replaced(
    peer_factory: Start,
) -> None:
    # The server closes after each answer without saying so (a keep-alive timeout): the next
    # request on the pooled connection fails before any answer, and goes out once more.
    peer = await peer_factory(lambda head, n: length(b"answer %d" % n), close_after=1)
    pool = Http1Pool(peer.origin, limit=4)
    assert (await pool.request(b"POST", b"/x", b"{}", timeout=10)).body == b"answer 1"
    await asyncio.sleep(0.05)
    assert (await pool.request(b"POST", b"/x", b"{}", timeout=10)).body == b"answer 2"
    assert peer.requests == 2  # nothing was asked twice
    await pool.close()


async def test_a_timeout_mid_answer_closes_that_connection(
    peer_factory: Start,
) -> None:
    peer = await peer_factory(lambda head, n: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
    pool = Http1Pool(peer.origin, limit=4)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):  # the pool's own time limit (the outer one: a guard)
        async with asyncio.timeout(3):
            await pool.request(b"POST", b"/x", b"{}", timeout=0.2)
    assert asyncio.get_running_loop().time() - started < 2
    with pytest.raises(TimeoutError):  # a new connection, not the half-read one; cancelled
        async with asyncio.timeout(0.2):
            await pool.request(b"POST", b"/x", b"{}", timeout=10)
    assert peer.connections == 2
    await pool.close()


async def test_nothing_listening_is_a_connection_error() -> None:
    from memoserve_dev.ports import free_port

    pool = Http1Pool(f"http://127.0.0.1:{free_port()}", limit=4)
    with pytest.raises(OSError, match=r"Connect call failed|refused"):
        await pool.request(b"GET", b"/", timeout=10)


def test_against_memoserve() -> None:
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with ServerThread(settings, AffineModel()) as server:

        async def ask() -> tuple[int, bytes]:
            pool = Http1Pool(server.url, limit=2)
            body = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'
            headers = ((b"Content-Type", b"application/json"),)
            response = await pool.request(
                b"POST", b"/v2/models/affine/infer", body, headers, timeout=10
            )
            await pool.close()
            return response.status, response.body

        status, body = asyncio.run(ask())
    assert status == 200
    assert b'"data":[3.0,5.0,7.0,9.0]' in body


def test_origins_it_takes() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Http1Pool("ftp://x", limit=1)
