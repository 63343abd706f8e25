"""One write per response (memoserve_serving.http.http_protocol): real sockets, real uvicorn.

Run on asyncio's and on uvloop's transports (production runs uvloop). How many writes the
server made is read from the kernel (/proc/self/task/<tid>/io), not from a stand-in transport;
the kernel counts write(2) and writev(2) there, which uvloop uses, but not asyncio's send(2), so
those counts are checked on uvloop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import httpx
import orjson
import pytest
import uvloop

from memoserve_contract.settings import HttpTransport, ServingSettings
from memoserve_serving.http.http_protocol import FLUSH_AT_BYTES, CoalescingTransport
from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings


def uvicorn_settings() -> ServingSettings:
    """Settings for a server on uvicorn: what these tests are about."""
    return serving_settings(http_transport=HttpTransport.UVICORN)


LOOPS = ("asyncio", "uvloop")
LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=LOOPS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    with ServerThread(uvicorn_settings(), AffineModel(), loop=request.param) as running:
        yield running


def write_calls(thread: threading.Thread) -> int:
    """System calls that wrote (write, writev, sendmsg, ...) made by ``thread`` so far."""
    for line in Path(f"/proc/self/task/{thread.native_id}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v2/models/affine/infer", orjson.dumps(infer_body())),  # the infer route
        ("GET", "/v2/models/affine", None),  # the Starlette app behind it
    ],
)
def test_each_response_leaves_in_one_write(method: str, path: str, body: bytes | None) -> None:
    requests = 40
    settings = uvicorn_settings()
    with (
        ServerThread(settings, AffineModel(), loop="uvloop") as server,
        httpx.Client(base_url=server.url) as http,
    ):
        assert http.request(method, path, content=body).status_code == 200  # connected, warm
        before = write_calls(server.thread)
        for _ in range(requests):
            response = http.request(method, path, content=body)
            assert response.status_code == 200
            assert response.json()  # the whole body came
        writes = write_calls(server.thread) - before
    # uvicorn's own protocol writes the head and then the body: 2 writes per response.
    assert requests <= writes <= requests + 2


def _request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """One request as bytes, written by h11 (so the tests need no hand-made HTTP)."""
    client = h11.Connection(h11.CLIENT)
    all_headers = [("host", "localhost"), *headers]
    if body:
        all_headers.append(("content-length", str(len(body))))
    data = client.send(h11.Request(method=method, target=target, headers=all_headers))
    if body:
        data += client.send(h11.Data(data=body))
    return data + client.send(h11.EndOfMessage())


def _read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """(status, body) of the next ``count`` responses on ``sock`` (100 Continue included)."""
    parser = h11.Connection(h11.CLIENT)

    def expect_a_response() -> None:  # h11 parses a response only after a request of its own
        parser.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        parser.send(h11.EndOfMessage())

    expect_a_response()
    responses: list[tuple[int, bytes]] = []
    status, body = 0, b""
    while len(responses) < count:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            parser.receive_data(sock.recv(65536))
        elif isinstance(event, h11.InformationalResponse):
            responses.append((event.status_code, b""))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            responses.append((status, body))
            status, body = 0, b""
            if len(responses) < count:  # the next response on the same connection
                parser.start_next_cycle()
                expect_a_response()
        elif isinstance(event, h11.ConnectionClosed):
            raise AssertionError(f"closed after {len(responses)} of {count} responses")
    return responses


def _connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.settings.port), timeout=10)


def test_pipelined_requests_are_answered_in_order(server: ServerThread) -> None:
    rows = ([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 1.0], [5.0, 5.0, 5.0, 5.0])
    with _connect(server) as sock:
        sock.sendall(
            b"".join(
                _request("POST", "/v2/models/affine/infer", [], orjson.dumps(infer_body(row)))
                for row in rows
            )
        )
        responses = _read_responses(sock, len(rows))
    for row, (status, body) in zip(rows, responses, strict=True):
        assert status == 200
        outputs = {o["name"]: o["data"] for o in orjson.loads(body)["outputs"]}
        assert outputs["y"] == [2 * x + 1 for x in row]


def test_a_closing_connection_gets_the_whole_response_first(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(_request("GET", "/v2/models/affine", [("connection", "close")]))
        ((status, body),) = _read_responses(sock, 1)
        assert status == 200
        assert orjson.loads(body)["name"] == "affine"
        assert sock.recv(1) == b""  # and then the server closed it


def test_expect_100_continue(server: ServerThread) -> None:
    body = orjson.dumps(infer_body())
    head, _, _ = _request(
        "POST", "/v2/models/affine/infer", [("expect", "100-continue")], body
    ).partition(b"\r\n\r\n")
    with _connect(server) as sock:
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        ((status, answer),) = _read_responses(sock, 1)
    assert status == 200
    assert orjson.loads(answer)["outputs"]


def test_a_large_response_arrives_whole(server: ServerThread) -> None:
    rows = 20_000  # ~0.5 MB of JSON: well past FLUSH_AT_BYTES
    data = [float(i % 97) for i in range(rows * 4)]
    body = {"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": data}]}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/v2/models/affine/infer", content=orjson.dumps(body))
    assert response.status_code == 200
    assert len(response.content) > 4 * FLUSH_AT_BYTES
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert outputs["y"] == [2 * x + 1 for x in data]


# -- CoalescingTransport on its own, over a real TCP connection --------------------------------


@asynccontextmanager
async def _wrapped_pair() -> AsyncIterator[
    tuple[CoalescingTransport, asyncio.Transport, socket.socket]
]:
    """A CoalescingTransport around the client side of a TCP connection, that side's own
    transport, and the server side as a plain non-blocking socket (read without yielding)."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        transport, _ = await loop.create_connection(asyncio.Protocol, *listener.getsockname()[:2])
        peer, _ = listener.accept()
    peer.setblocking(False)
    wrapped = CoalescingTransport(transport, loop)  # type: ignore[arg-type]
    try:
        yield wrapped, transport, peer
    finally:
        transport.abort()
        peer.close()


async def _receive(peer: socket.socket, size: int) -> bytes:
    received = b""
    async with asyncio.timeout(10):
        while len(received) < size:
            try:
                chunk = peer.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            if not chunk:
                break
            received += chunk
    return received


def _nothing_sent(peer: socket.socket) -> bool:
    try:
        peer.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    return False


def run_on(loop_name: str, check: Callable[[], Any]) -> None:
    runner = asyncio.Runner(loop_factory=LOOP_FACTORIES[loop_name])
    with runner:
        runner.run(check())


@pytest.mark.parametrize("loop_name", LOOPS)
def test_writes_leave_together_at_the_end_of_the_iteration(loop_name: str) -> None:
    async def check() -> None:
        async with _wrapped_pair() as (wrapped, _, peer):
            wrapped.write(b"head|")
            wrapped.writelines([b"body", b"|tail"])
            assert wrapped.get_write_buffer_size() == len(b"head|body|tail")
            await asyncio.sleep(0.05)  # the end of this iteration and of a few more
            assert not _nothing_sent(peer)
            assert await _receive(peer, 14) == b"head|body|tail"
            assert wrapped.get_write_buffer_size() == 0

    run_on(loop_name, check)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_held_writes_are_not_on_the_socket_until_flushed(loop_name: str) -> None:
    async def check() -> None:
        async with _wrapped_pair() as (wrapped, _, peer):
            before = write_calls(threading.current_thread())
            wrapped.write(b"a")
            wrapped.write(b"b")
            # Loopback TCP delivers within the sending call: had anything been written, the
            # peer could read it now.
            assert _nothing_sent(peer)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if loop_name == "uvloop":  # see the module docstring
                assert write_calls(threading.current_thread()) == before + 1  # one call
            assert await _receive(peer, 2) == b"ab"

    run_on(loop_name, check)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_large_write_leaves_at_once(loop_name: str) -> None:
    async def check() -> None:
        async with _wrapped_pair() as (wrapped, _, peer):
            wrapped.write(b"x" * FLUSH_AT_BYTES)
            assert not _nothing_sent(peer)  # no need to wait for the iteration's end
            assert len(await _receive(peer, FLUSH_AT_BYTES)) == FLUSH_AT_BYTES

    run_on(loop_name, check)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_close_writes_what_is_held_and_abort_drops_it(loop_name: str) -> None:
    async def check() -> None:
        async with _wrapped_pair() as (wrapped, _, peer):
            wrapped.write(b"last words")
            wrapped.close()
            assert wrapped.is_closing()
            assert await _receive(peer, 100) == b"last words"  # then EOF
        async with _wrapped_pair() as (wrapped, _, peer):
            wrapped.write(b"never sent")
            wrapped.abort()
            assert wrapped.get_write_buffer_size() == 0
            await asyncio.sleep(0.01)
            with contextlib.suppress(ConnectionResetError):  # an abort may reset it
                assert await _receive(peer, 100) == b""

    run_on(loop_name, check)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_connection_lost_before_the_flush_drops_the_held_data(loop_name: str) -> None:
    async def check() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        async with _wrapped_pair() as (wrapped, transport, _):
            wrapped.write(b"too late")
            transport.abort()  # the connection goes away under the held write
            await asyncio.sleep(0.01)
        assert errors == []  # the flush saw a closing transport and wrote nothing

    run_on(loop_name, check)
