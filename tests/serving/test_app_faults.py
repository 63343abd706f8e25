"""Redis trouble is never an outage: requests are answered, uncached, and hits come back."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from memoserve_dev.redis_server import RedisServer
from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("http_transport")  # tests/serving/conftest.py

URL = "/v2/models/affine/infer"


def expected_y(i: int) -> list[float]:
    return [2.0 * i + 1, 1.0, 1.0, 1.0]


async def hammer(http: httpx.AsyncClient, stop: asyncio.Event, seen: list[str]) -> None:
    """Ask rows 0..9 over and over; every answer must be a correct 200."""
    i = 0
    while not stop.is_set():
        row = i % 10
        response = await http.post(URL, json=infer_body([float(row), 0, 0, 0]))
        assert response.status_code == 200, response.text
        y = next(o for o in response.json()["outputs"] if o["name"] == "y")
        assert y["data"] == expected_y(row)
        seen.append(response.headers["x-memoserve-cache"])
        i += 1


def breaker_open(metrics: httpx.Response) -> float:
    """memoserve_cache_breaker_open of the server's one Redis node."""
    [value] = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("memoserve_cache_breaker_open{")
    ]
    return value


async def test_redis_killed_and_restarted_under_load(own_redis: RedisServer) -> None:
    settings = serving_settings(redis_url=own_redis.url, redis_breaker_reset_seconds=0.2)
    with ServerThread(settings, AffineModel()) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            stop = asyncio.Event()
            seen: list[str] = []
            workers = [asyncio.create_task(hammer(http, stop, seen)) for _ in range(8)]
            await asyncio.sleep(0.5)
            assert breaker_open(await http.get("/metrics")) == 0.0
            own_redis.kill()
            await asyncio.sleep(1.0)
            assert breaker_open(await http.get("/metrics")) == 1.0  # the dashboard's panel
            own_redis.start()
            # Hits come back on their own once Redis is reachable again.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if seen[-20:].count("hit") == 20:
                    break
            stop.set()
            await asyncio.gather(*workers)
            assert breaker_open(await http.get("/metrics")) == 0.0
    assert "error" in seen  # Redis was really down for a while...
    assert seen[-20:] == ["hit"] * 20  # ...and the cache recovered by itself


async def test_hung_redis_costs_a_bounded_wait(own_redis: RedisServer) -> None:
    settings = serving_settings(redis_url=own_redis.url, redis_timeout_ms=50)
    assert own_redis.process is not None
    pid = own_redis.process.pid
    with ServerThread(settings, AffineModel()) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            await http.post(URL, json=infer_body())  # connect while Redis is healthy
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                responses = [await http.post(URL, json=infer_body()) for _ in range(20)]
                elapsed = time.monotonic() - started
            finally:
                os.kill(pid, signal.SIGCONT)
    assert all(r.status_code == 200 for r in responses)
    assert {r.headers["x-memoserve-cache"] for r in responses} == {"error"}
    # 20 requests at a 50 ms timeout would take >= 1 s without the breaker; generous bound.
    assert elapsed < 5
