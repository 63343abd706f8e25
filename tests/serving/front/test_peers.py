"""The cache front in front of other v2 servers, as real processes: MLServer (pip mlserver,
mlserver-sklearn) serving the iris scikit-learn model; KServe's ``kserve.ModelServer``.

Miss -> forwarded, repeat -> hit; the upstream killed -> a clear 502, and back once it is; Redis
killed under load -> no request fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memoserve_dev.redis_server import RedisServer
from tests.serving.front.test_front import upstream_backend, wait_ready
from tests.support.peers import PeerServer, kserve_affine, mlserver, runs
from tests.support.serving import ServerThread, serving_settings

FLOWER = [5.1, 3.5, 1.4, 0.2]


def request(row: list[float] = FLOWER, name: str = "input-0") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": [1, 4], "datatype": "FP64", "data": row}]}


def front_for(upstream: PeerServer, redis_url: str, **overrides: Any) -> ServerThread:
    settings = serving_settings(
        model_name=upstream.model,
        upstream_url=upstream.url,
        redis_url=redis_url,
        model_identity="peer-test",
        **overrides,
    )
    return ServerThread(settings)


def ask(front: ServerThread, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{front.url}/v2/models/{front.settings.model_name}/infer", json=body, timeout=10
    )


@pytest.fixture
def mlserver_iris(tmp_path: Path, sample_models: Path) -> Iterator[PeerServer]:
    server = mlserver(tmp_path, sample_models / "iris.joblib").start()
    yield server
    server.stop()


def test_mlserver_miss_then_hit(mlserver_iris: PeerServer, redis_url: str) -> None:
    with front_for(mlserver_iris, redis_url) as front:
        wait_ready(front, timeout=30)
        direct = httpx.post(
            f"{mlserver_iris.url}/v2/models/iris/infer", json=request(), timeout=10
        ).json()
        first, second = ask(front, request()), ask(front, request())
        assert [first.status_code, second.status_code] == [200, 200], first.text
        assert [a.headers["x-memoserve-cache"] for a in (first, second)] == ["miss", "hit"]
        # MLServer's own answer, through the front.
        assert first.json()["outputs"][0]["data"] == direct["outputs"][0]["data"] == [0]
        assert first.json()["outputs"] == second.json()["outputs"]
        assert not upstream_backend(front).binary  # MLServer lists no binary_tensor_data: JSON


def test_mlserver_killed_is_a_502_then_recovers(mlserver_iris: PeerServer, redis_url: str) -> None:
    with front_for(mlserver_iris, redis_url) as front:
        wait_ready(front, timeout=30)
        assert ask(front, request()).status_code == 200
        mlserver_iris.stop()
        down = ask(front, request([6.0, 3.0, 4.8, 1.8]))
        assert down.status_code == 502
        assert down.json()["error"].startswith(f"upstream {mlserver_iris.url}: ")
        assert ask(front, request()).headers["x-memoserve-cache"] == "hit"  # hits go on
        mlserver_iris.start()  # the same port
        back = ask(front, request([6.0, 3.0, 4.8, 1.8]))
        assert (back.status_code, back.headers["x-memoserve-cache"]) == (200, "miss")


def test_mlserver_refusal_passes_through(mlserver_iris: PeerServer, redis_url: str) -> None:
    with front_for(mlserver_iris, redis_url) as front:
        wait_ready(front, timeout=30)
        bad = ask(front, request([1.0, 2.0]))  # two values for shape [1, 4]
        assert 400 <= bad.status_code < 500, bad.text
        assert bad.headers["x-memoserve-cache"] == "bypass"


def test_redis_killed_under_load_fails_no_request(
    mlserver_iris: PeerServer, own_redis: RedisServer
) -> None:
    with front_for(mlserver_iris, own_redis.url) as front:
        wait_ready(front, timeout=30)

        async def load() -> list[int]:
            codes: list[int] = []
            async with httpx.AsyncClient(timeout=15) as client:
                url = f"{front.url}/v2/models/iris/infer"
                for round_ in range(30):
                    if round_ == 10:
                        own_redis.kill()
                    rows = [[4.0 + (i % 4) / 2, 3.0, 1.5, 0.2] for i in range(8)]
                    answers = await asyncio.gather(
                        *(client.post(url, json=request(r)) for r in rows)
                    )
                    codes += [a.status_code for a in answers]
            return codes

        started = time.monotonic()
        assert asyncio.run(load()) == [200] * 240
        assert time.monotonic() - started < 60


@pytest.fixture
def kserve_server(tmp_path: Path) -> Iterator[PeerServer]:
    server = kserve_affine(tmp_path).start()
    yield server
    server.stop()


AFFINE = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def test_kserve_model_server_miss_then_hit(kserve_server: PeerServer, redis_url: str) -> None:
    with front_for(kserve_server, redis_url) as front:
        wait_ready(front, timeout=30)
        first, second = ask(front, AFFINE), ask(front, AFFINE)
        assert [first.status_code, second.status_code] == [200, 200], first.text
        assert [a.headers["x-memoserve-cache"] for a in (first, second)] == ["miss", "hit"]
        assert first.json()["outputs"][0]["data"] == [3.0, 5.0, 7.0, 9.0]
        assert runs(kserve_server) == 1


def test_kserve_killed_is_a_502_then_recovers(kserve_server: PeerServer, redis_url: str) -> None:
    with front_for(kserve_server, redis_url) as front:
        wait_ready(front, timeout=30)
        assert ask(front, AFFINE).status_code == 200
        kserve_server.stop()
        other = {"inputs": [{**AFFINE["inputs"][0], "data": [0, 0, 0, 1]}]}
        assert ask(front, other).status_code == 502
        assert ask(front, AFFINE).headers["x-memoserve-cache"] == "hit"
        kserve_server.start()
        assert ask(front, other).status_code == 200
        assert runs(kserve_server) == 2
