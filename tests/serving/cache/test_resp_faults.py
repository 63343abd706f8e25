"""The lean client when Redis hangs (SIGSTOP), dies and comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from memoserve_dev.redis_server import RedisServer
from memoserve_serving.cache.resp_connection import RedisConnectionError, RedisError, RedisTimeout
from tests.serving.cache.conftest import ClientFactory


@pytest.fixture
def paused_guard(own_redis: RedisServer) -> Iterator[RedisServer]:
    """own_redis, resumed at the end even if the test fails while it is paused."""
    yield own_redis
    own_redis.resume()


async def _fill(client_url: str, make_client: ClientFactory, n: int) -> None:
    loader = make_client(client_url)
    await asyncio.gather(*(loader.set(f"k{i}".encode(), f"v{i}".encode()) for i in range(n)))


async def test_hung_server_times_out_within_the_bound_and_fifo_survives(
    paused_guard: RedisServer, make_client: ClientFactory
) -> None:
    redis = paused_guard
    await _fill(redis.url, make_client, 20)
    client = make_client(redis.url, timeout=0.2, stall_timeout=30.0)
    assert await client.get(b"k0") == b"v0"
    conn = client._conn

    redis.pause()
    started = time.monotonic()
    results = await asyncio.gather(
        *(client.get(f"k{i}".encode()) for i in range(1, 10)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(r, RedisTimeout) for r in results)
    assert elapsed < 2.0  # the bound is 0.1 s; generous for a loaded CI machine
    # A cancelled command keeps its place in the queue, like a timed-out one.
    cancelled = asyncio.ensure_future(client.get(b"k10"))
    await asyncio.sleep(0.01)
    cancelled.cancel()

    redis.resume()
    # The late replies to k1..k10 arrive first and must be dropped, not handed to these.
    got = await asyncio.gather(*(client.get(f"k{i}".encode()) for i in range(11, 20)))
    assert got == [f"v{i}".encode() for i in range(11, 20)]
    assert client._conn is conn  # same connection: the FIFO, not a reconnect, kept it right
    for i in range(20):
        assert await client.get(f"k{i}".encode()) == f"v{i}".encode()


async def test_stalled_connection_is_dropped_and_replaced(
    paused_guard: RedisServer, make_client: ClientFactory
) -> None:
    redis = paused_guard
    client = make_client(redis.url, timeout=0.05, stall_timeout=0.3)
    await client.set(b"k", b"v")
    conn = client._conn
    redis.pause()
    with pytest.raises(RedisTimeout):
        await client.get(b"k")
    await asyncio.sleep(0.8)  # past the stall timeout: the connection is given up
    assert conn is not None
    assert not conn.open
    redis.resume()
    for _ in range(50):  # reconnects (after a short backoff, if a connect failed meanwhile)
        try:
            assert await client.get(b"k") == b"v"
            break
        except RedisError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("client did not reconnect")
    assert client._conn is not conn


async def test_connect_to_a_hung_server_times_out(
    paused_guard: RedisServer, make_client: ClientFactory
) -> None:
    redis = paused_guard
    redis.pause()  # the kernel still accepts TCP; the handshake PING gets no answer
    client = make_client(redis.url, timeout=0.1)
    started = time.monotonic()
    with pytest.raises(RedisTimeout):
        await client.ping()
    assert time.monotonic() - started < 2.0


async def test_kill_fails_pending_commands_at_once_then_reconnects(
    own_redis: RedisServer, make_client: ClientFactory
) -> None:
    client = make_client(own_redis.url, timeout=5.0)  # so a quick failure is not a timeout
    await client.set(b"k", b"v")
    own_redis.pause()
    pending = [asyncio.ensure_future(client.get(b"k")) for _ in range(5)]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    own_redis.kill()  # SIGKILL: the kernel closes the socket
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    assert time.monotonic() - started < 2.0

    # Down: fails fast (refused, then backoff without touching the network).
    with pytest.raises(RedisConnectionError):
        await client.get(b"k")
    with pytest.raises(RedisConnectionError, match="backoff"):
        await client.get(b"k")

    own_redis.start()
    for _ in range(100):
        try:
            assert await client.get(b"k") is None  # a fresh, empty server
            break
        except RedisConnectionError:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("client did not reconnect")
    assert client.connected


async def test_backoff_grows_and_is_bounded(
    own_redis: RedisServer, make_client: ClientFactory
) -> None:
    own_redis.kill()
    client = make_client(own_redis.url, timeout=0.1)
    attempts = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            await client.ping()
        except RedisConnectionError as exc:
            if "backoff" not in str(exc):
                attempts += 1  # a real connect attempt
        await asyncio.sleep(0.001)
    # ~1000 commands in 1 s, but only a handful of connect attempts (0.05, 0.1, 0.2, 0.4 s...).
    assert 2 <= attempts <= 8


async def test_concurrent_callers_share_one_connect(
    redis_url: str, make_client: ClientFactory
) -> None:
    client = make_client(redis_url)
    await client.set(b"k", b"v")
    fresh = make_client(redis_url)
    got = await asyncio.gather(*(fresh.get(b"k") for _ in range(50)))
    assert got == [b"v"] * 50
    conn = fresh._conn
    assert conn is not None
    assert conn.writes <= 3  # one connect (handshake), the 50 GETs pipelined behind it


async def test_every_command_on_a_hung_server_times_out_on_time(
    paused_guard: RedisServer, make_client: ClientFactory
) -> None:
    # After the first timeout only late replies are outstanding and the timer waits for the
    # stall check (30 s here); each new command must still get its own 0.05 s deadline.
    client = make_client(paused_guard.url, timeout=0.05, stall_timeout=30.0)
    await client.ping()
    paused_guard.pause()
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(RedisTimeout):
            await client.get(b"k")
    assert time.monotonic() - started < 2.0
