"""The HTTP surface end to end: real uvicorn, real redis-server, real HTTP client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from memoserve_dev.redis_server import RedisServer
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("http_transport")  # tests/serving/conftest.py

ROW = [1.0, 2.0, 3.0, 4.0]


def infer_body(row: list[float] = ROW, **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": row}], **extra}


@pytest.fixture
def model() -> AffineModel:
    return AffineModel()


@pytest.fixture
def server(redis_url: str, model: AffineModel) -> Iterator[ServerThread]:
    with ServerThread(serving_settings(redis_url=redis_url), model) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as http:
        yield http


def test_health_and_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    server_meta = client.get("/v2").json()
    assert server_meta["name"] == "memoserve"
    assert "binary_tensor_data" in server_meta["extensions"]
    meta = client.get("/v2/models/affine").json()
    assert meta["name"] == "affine"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["y", "sum"]
    assert client.get("/v2/models/affine/ready").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/v2/models/other", "/v2/models/other/ready", "/v2/models/affine/versions/7"],
)
def test_unknown_model_or_version_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


def test_infer_unknown_model_is_404_with_error(client: httpx.Client) -> None:
    response = client.post("/v2/models/other/infer", json=infer_body())
    assert response.status_code == 404
    assert "other" in response.json()["error"]


def test_miss_then_hit_returns_same_answer_and_runs_model_once(
    client: httpx.Client, model: AffineModel
) -> None:
    first = client.post("/v2/models/affine/infer", json=infer_body(id="a"))
    second = client.post("/v2/models/affine/infer", json=infer_body(id="b"))
    assert first.status_code == second.status_code == 200
    assert first.headers["x-memoserve-cache"] == "miss"
    assert second.headers["x-memoserve-cache"] == "hit"
    assert first.json()["id"] == "a"
    assert second.json()["id"] == "b"  # the id is echoed, not cached
    outputs = {o["name"]: o for o in second.json()["outputs"]}
    assert outputs["y"]["data"] == [3.0, 5.0, 7.0, 9.0]
    assert outputs["sum"]["data"] == [24.0]
    assert first.json()["outputs"] == second.json()["outputs"]
    assert model.calls == 1


def test_equivalent_json_spellings_hit_the_same_entry(
    client: httpx.Client, model: AffineModel
) -> None:
    client.post("/v2/models/affine/infer", json=infer_body())
    respelled = (
        b'{ "inputs" : [ { "data" : [[1, 2, 3, 4]], "datatype" : "FP32", "shape" : [1,4],'
        b' "name" : "x" } ] }'
    )
    response = client.post(
        "/v2/models/affine/infer", content=respelled, headers={"content-type": "application/json"}
    )
    assert response.headers["x-memoserve-cache"] == "hit"
    assert model.calls == 1


def test_requested_output_subset(client: httpx.Client) -> None:
    body = infer_body(outputs=[{"name": "sum"}])
    response = client.post("/v2/models/affine/infer", json=body)
    assert [o["name"] for o in response.json()["outputs"]] == ["sum"]


def test_cache_control_no_cache_and_no_store(
    client: httpx.Client, model: AffineModel, redis_server: RedisServer
) -> None:
    url = "/v2/models/affine/infer"
    stored_nothing = client.post(url, json=infer_body(), headers={"cache-control": "no-store"})
    assert stored_nothing.headers["x-memoserve-cache"] == "miss"
    assert redis_server.cli("DBSIZE") == "0"
    assert client.post(url, json=infer_body()).headers["x-memoserve-cache"] == "miss"
    bypass = client.post(url, json=infer_body(), headers={"cache-control": "no-cache"})
    assert bypass.headers["x-memoserve-cache"] == "bypass"
    assert client.post(url, json=infer_body()).headers["x-memoserve-cache"] == "hit"
    assert model.calls == 3


def test_bad_requests_get_400_naming_the_problem(client: httpx.Client) -> None:
    url = "/v2/models/affine/infer"
    cases = [
        (b"{not json", "json"),
        (
            b'{"inputs": [{"name": "z", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}]}',
            "z",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [1,2,3,4]}]}',
            "x",
        ),
        (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3]}]}', "x"),
        (b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1,2,3]}]}', "x"),
    ]
    for body, named in cases:
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        assert named in response.json()["error"].lower(), (body, response.json())


def test_body_limit_is_413(redis_url: str, model: AffineModel) -> None:
    settings = serving_settings(redis_url=redis_url, max_body_bytes=64)
    with ServerThread(settings, model) as running, httpx.Client(base_url=running.url) as http:
        response = http.post("/v2/models/affine/infer", json=infer_body())
        assert response.status_code == 413
        assert "64" in response.json()["error"]


def test_a_chunked_body_is_read_and_refused_past_the_limit(
    redis_url: str, model: AffineModel
) -> None:
    body = json.dumps(infer_body()).encode()
    settings = serving_settings(redis_url=redis_url, max_body_bytes=len(body) + 8)
    with ServerThread(settings, model) as running, httpx.Client(base_url=running.url) as http:

        def chunks(data: bytes) -> Iterator[bytes]:  # no Content-Length: chunked encoding
            yield from (data[i : i + 16] for i in range(0, len(data), 16))

        fits = http.post("/v2/models/affine/infer", content=chunks(body))
        assert fits.status_code == 200, fits.text
        assert "content-length" not in fits.request.headers
        too_big = http.post("/v2/models/affine/infer", content=chunks(body + b" " * 64))
        assert too_big.status_code == 413
        assert str(len(body) + 8) in too_big.json()["error"]


def test_get_on_infer_is_405(client: httpx.Client) -> None:
    assert client.get("/v2/models/affine/infer").status_code == 405


def test_model_failure_is_500_and_never_cached(redis_url: str) -> None:
    failing = AffineModel(fail_on=13.0)
    settings = serving_settings(redis_url=redis_url)
    with ServerThread(settings, failing) as running, httpx.Client(base_url=running.url) as http:
        body = infer_body([13.0, 0.0, 0.0, 0.0])
        for _ in range(2):
            response = http.post("/v2/models/affine/infer", json=body)
            assert response.status_code == 500
            assert "refused" in response.json()["error"]
    assert failing.calls == 2


def test_without_redis_url_the_cache_is_off(model: AffineModel) -> None:
    with (
        ServerThread(serving_settings(), model) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        for _ in range(2):
            response = http.post("/v2/models/affine/infer", json=infer_body())
            assert response.headers["x-memoserve-cache"] == "off"
    assert model.calls == 2


async def test_identical_concurrent_misses_run_the_model_once(redis_url: str) -> None:
    slow = AffineModel(delay=0.2)
    with ServerThread(serving_settings(redis_url=redis_url), slow) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            responses = await asyncio.gather(
                *(http.post("/v2/models/affine/infer", json=infer_body()) for _ in range(20))
            )
    assert all(r.status_code == 200 for r in responses)
    assert slow.calls == 1
    results = sorted(r.headers["x-memoserve-cache"] for r in responses)
    assert results.count("miss") == 1


async def test_concurrent_different_misses_are_batched(redis_url: str) -> None:
    slow = AffineModel(delay=0.05)
    settings = serving_settings(redis_url=redis_url, batch_max_size=32, batch_max_wait_ms=20)
    with ServerThread(settings, slow) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            responses = await asyncio.gather(
                *(
                    http.post("/v2/models/affine/infer", json=infer_body([float(i), 0, 0, 0]))
                    for i in range(24)
                )
            )
    for i, response in enumerate(responses):
        assert response.status_code == 200
        y = next(o for o in response.json()["outputs"] if o["name"] == "y")
        assert y["data"] == [2.0 * i + 1, 1.0, 1.0, 1.0]  # each caller got its own rows back
    assert sum(slow.rows_seen) == 24
    assert slow.calls < 24
    assert max(slow.rows_seen) > 1


@pytest.mark.parametrize("batch_max_size", [1, 8])
@pytest.mark.parametrize(
    ("delay", "locked_misses"),
    [
        (0.0, 1),  # only the first, while the model's cost is unknown
        (0.005, 4),  # 5 ms per request: above the 1 ms threshold, every miss coordinates
    ],
)
def test_misses_take_the_cross_replica_lock_only_for_a_model_worth_it(
    redis_url: str,
    redis_server: RedisServer,
    delay: float,
    locked_misses: int,
    batch_max_size: int,
) -> None:
    settings = serving_settings(
        redis_url=redis_url, cache_lock_min_model_ms=1.0, batch_max_size=batch_max_size
    )
    redis_server.cli("CONFIG", "RESETSTAT")
    with (
        ServerThread(settings, AffineModel(delay=delay)) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        for i in range(4):
            response = http.post("/v2/models/affine/infer", json=infer_body([float(i), 0, 0, 0]))
            assert response.headers["x-memoserve-cache"] == "miss"
    # Each lock taken is released with one EVAL (compare-and-delete).
    assert redis_server.command_calls("EVAL") == locked_misses


def test_metrics_count_every_request_by_cache_result(client: httpx.Client) -> None:
    url = "/v2/models/affine/infer"
    client.post(url, json=infer_body())  # miss
    client.post(url, json=infer_body())  # hit
    client.post(url, json=infer_body(), headers={"cache-control": "no-cache"})  # bypass
    client.post(url, content=b"[]", headers={"content-type": "application/json"})  # 400
    text = client.get("/metrics").text
    counts = {
        (sample.labels["cache"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "memoserve_requests"
        for sample in family.samples
        if sample.name == "memoserve_requests_total"
    }
    assert counts == {
        ("miss", "200"): 1,
        ("hit", "200"): 1,
        ("bypass", "200"): 1,
        ("bypass", "400"): 1,
    }
    assert "memoserve_model_duration_seconds" in text
    assert "memoserve_inflight_requests" in text


async def test_inflight_gauge_counts_requests_being_served(redis_url: str) -> None:
    slow = AffineModel(delay=0.5)
    with ServerThread(serving_settings(redis_url=redis_url), slow) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            pending = asyncio.create_task(http.post("/v2/models/affine/infer", json=infer_body()))
            await asyncio.sleep(0.2)
            during = (await http.get("/metrics")).text
            await pending
            after = (await http.get("/metrics")).text
    assert 'memoserve_inflight_requests{model="affine"} 1.0' in during
    assert 'memoserve_inflight_requests{model="affine"} 0.0' in after
