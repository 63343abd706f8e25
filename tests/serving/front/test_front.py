"""The cache front against a real v2 server upstream: memoserve's own built-in runtime here
(a real HTTP server with a model that counts its runs); MLServer and KServe in test_peers.py.

Both are real servers on real ports, with a real redis-server: misses cross the wire to the
upstream, hits never do.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from memoserve_dev.redis_server import RedisServer
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from memoserve_serving.upstream.backend import UpstreamBackend
from tests.serving.test_conformance import requests_by_cache
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("http_transport")  # tests/serving/conftest.py

ROW = [1.0, 2.0, 3.0, 4.0]


def body(row: list[float] = ROW, **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": row}], **extra}


@pytest.fixture
def model() -> AffineModel:
    return AffineModel()


@pytest.fixture
def upstream(model: AffineModel) -> Iterator[ServerThread]:
    """The model tier: memoserve's built-in runtime, uncached (the front caches)."""
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with ServerThread(settings, model) as running:
        yield running


def front_settings(upstream: ServerThread, redis_url: str | None, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "upstream_url": upstream.url,
        "redis_url": redis_url,
        "model_uri": "",
        "model_format": None,
        "model_identity": "test-identity",
    }
    return serving_settings(**(values | overrides))


def wait_ready(server: ServerThread, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{server.url}/v2/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "the front never became ready"
        time.sleep(0.02)


@pytest.fixture
def front(upstream: ServerThread, redis_url: str) -> Iterator[ServerThread]:
    with ServerThread(front_settings(upstream, redis_url)) as running:
        wait_ready(running)
        yield running


def infer(server: ServerThread, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/affine/infer", json=payload, timeout=10)


def test_a_miss_is_forwarded_and_a_repeat_never_reaches_the_upstream(
    front: ServerThread, model: AffineModel
) -> None:
    first, second = infer(front, body()), infer(front, body())
    assert [first.status_code, second.status_code] == [200, 200]
    assert [r.headers["x-memoserve-cache"] for r in (first, second)] == ["miss", "hit"]
    assert first.json()["outputs"] == second.json()["outputs"]
    assert first.json()["outputs"][0] == {
        "name": "y", "datatype": "FP32", "shape": [1, 4], "data": [3.0, 5.0, 7.0, 9.0],
    }  # fmt: skip
    assert model.calls == 1
    # A selection of outputs is the same question: projected from the cached whole answer.
    chosen = infer(front, body(outputs=[{"name": "sum"}]))
    assert chosen.headers["x-memoserve-cache"] == "hit"
    assert [o["name"] for o in chosen.json()["outputs"]] == ["sum"]
    assert model.calls == 1


def test_grpc_on_the_front_shares_the_cache(front: ServerThread, model: AffineModel) -> None:
    assert infer(front, body()).headers["x-memoserve-cache"] == "miss"
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 4], contents=pb.InferTensorContents(fp32_contents=ROW)
    )
    with grpc.insecure_channel(front.grpc_target) as channel:
        _, call = GRPCInferenceServiceStub(channel).ModelInfer.with_call(
            pb.ModelInferRequest(model_name="affine", inputs=[tensor]), timeout=10
        )
    assert dict(call.trailing_metadata())["x-memoserve-cache"] == "hit"
    assert model.calls == 1


def upstream_backend(front: ServerThread) -> UpstreamBackend:
    dataplane = front.app.state.dataplane
    assert dataplane is not None
    backend = dataplane.served.model
    assert isinstance(backend, UpstreamBackend)
    return backend


def test_values_json_cannot_carry_reach_an_upstream_that_takes_binary_tensors(
    front: ServerThread, model: AffineModel
) -> None:
    assert upstream_backend(front).binary  # memoserve lists binary_tensor_data in GET /v2
    row = [math.nan, math.inf, 1.0, -0.0]
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 4], contents=pb.InferTensorContents(fp32_contents=row)
    )
    seen = []
    with grpc.insecure_channel(front.grpc_target) as channel:
        for _ in range(2):
            answer, call = GRPCInferenceServiceStub(channel).ModelInfer.with_call(
                pb.ModelInferRequest(model_name="affine", inputs=[tensor]), timeout=10
            )
            seen.append(dict(call.trailing_metadata())["x-memoserve-cache"])
            y = next(o for o in answer.outputs if o.name == "y").contents.fp32_contents
            assert math.isnan(y[0])
            assert list(y)[1:] == [math.inf, 3.0, 1.0]  # 2x + 1
    assert seen == ["miss", "hit"]
    assert model.calls == 1


def test_the_upstreams_refusal_passes_through_uncached(
    front: ServerThread, upstream: ServerThread, model: AffineModel
) -> None:
    wrong = {"inputs": [{"name": "z", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    answers = [infer(front, wrong) for _ in range(2)]
    assert [a.status_code for a in answers] == [400, 400]
    assert "'z'" in answers[0].json()["error"]  # the upstream's own words
    assert [a.headers["x-memoserve-cache"] for a in answers] == ["bypass", "bypass"]
    assert requests_by_cache(upstream) == {"bypass": 2}  # both went upstream: none was stored
    assert model.calls == 0


def test_an_upstream_failure_is_never_cached(upstream: ServerThread, redis_url: str) -> None:
    failing = AffineModel(fail_on=9.0)
    with (
        ServerThread(serving_settings(cache_enabled=False, grpc_enabled=False), failing) as up,
        ServerThread(front_settings(up, redis_url)) as running,
    ):
        wait_ready(running)
        answers = [infer(running, body([9.0, 0, 0, 0])) for _ in range(2)]
        assert [a.status_code for a in answers] == [502, 502]
        assert answers[0].json()["error"].startswith(f"upstream {up.url} answered 500: ")
        assert failing.calls == 2


def test_a_dead_upstream_is_a_clear_502_hits_still_answer_and_it_recovers(
    model: AffineModel, redis_url: str
) -> None:
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    upstream = ServerThread(settings, model)
    upstream.__enter__()
    with ServerThread(front_settings(upstream, redis_url)) as running:
        wait_ready(running)
        assert infer(running, body()).status_code == 200
        upstream.__exit__(None, None, None)  # the model tier goes away
        miss = infer(running, body([5.0, 5.0, 5.0, 5.0]))
        assert miss.status_code == 502
        assert miss.json()["error"].startswith(f"upstream {upstream.url}: ")
        hit = infer(running, body())
        assert (hit.status_code, hit.headers["x-memoserve-cache"]) == (200, "hit")
        with ServerThread(settings.model_copy(), model):  # back, on the same port
            assert infer(running, body([5.0, 5.0, 5.0, 5.0])).status_code == 200


def test_not_ready_until_the_upstream_answers(model: AffineModel, redis_url: str) -> None:
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    upstream = ServerThread(settings, model)  # not started yet
    with ServerThread(front_settings(upstream, redis_url)) as running:
        assert httpx.get(f"{running.url}/v2/health/live").status_code == 200
        assert httpx.get(f"{running.url}/v2/health/ready").status_code == 503
        assert infer(running, body()).status_code == 503
        with upstream:
            wait_ready(running)
            assert infer(running, body()).status_code == 200


def test_a_saturated_upstream_sheds_with_retry_after(redis_url: str) -> None:
    slow = AffineModel(delay=0.5)
    settings = serving_settings(cache_enabled=False, grpc_enabled=False, batch_max_size=1)
    with (
        ServerThread(settings, slow) as up,
        ServerThread(
            front_settings(up, redis_url, upstream_max_connections=1, upstream_max_queued=1)
        ) as running,
    ):
        wait_ready(running)

        async def burst() -> tuple[list[httpx.Response], str]:
            async with httpx.AsyncClient(timeout=10) as client:
                url = f"{running.url}/v2/models/affine/infer"
                posts = [client.post(url, json=body([float(i), 0, 0, 0])) for i in range(6)]

                async def metrics_meanwhile() -> str:
                    await asyncio.sleep(0.25)  # the first of the two upstream calls runs 0.5 s
                    return (await client.get(f"{running.url}/metrics")).text

                *answers, meanwhile = await asyncio.gather(*posts, metrics_meanwhile())
                assert isinstance(meanwhile, str)
                return [a for a in answers if isinstance(a, httpx.Response)], meanwhile

        answers, meanwhile = asyncio.run(burst())
        assert 'memoserve_upstream_inflight_requests{model="affine"} 2.0' in meanwhile
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 200, 503, 503, 503, 503]  # one running, one waiting, the rest shed
        shed = next(a for a in answers if a.status_code == 503)
        assert shed.headers["retry-after"] == "1"
        assert "saturated" in shed.json()["error"]
        metrics = httpx.get(f"{running.url}/metrics").text
        assert 'memoserve_shed_total{model="affine"} 4.0' in metrics
        assert 'memoserve_upstream_inflight_requests{model="affine"} 0.0' in metrics


def test_a_grpc_deadline_bounds_the_upstream_call(redis_url: str) -> None:
    slow = AffineModel(delay=2.0)
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with (
        ServerThread(settings, slow) as up,
        ServerThread(front_settings(up, redis_url)) as running,
    ):
        wait_ready(running)
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="x",
            datatype="FP32",
            shape=[1, 4],
            contents=pb.InferTensorContents(fp32_contents=ROW),
        )
        started = time.monotonic()
        with (
            grpc.insecure_channel(running.grpc_target) as channel,
            pytest.raises(grpc.RpcError) as failed,
        ):
            GRPCInferenceServiceStub(channel).ModelInfer(
                pb.ModelInferRequest(model_name="affine", inputs=[tensor]), timeout=0.5
            )
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.5


def test_redis_killed_under_load_fails_nothing(model: AffineModel, own_redis: RedisServer) -> None:
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with (
        ServerThread(settings, model) as up,
        ServerThread(front_settings(up, own_redis.url)) as running,
    ):
        wait_ready(running)

        async def load() -> list[int]:
            async with httpx.AsyncClient(timeout=10) as client:
                url = f"{running.url}/v2/models/affine/infer"
                codes = []
                for round_ in range(40):
                    if round_ == 10:
                        own_redis.kill()
                    batch = [client.post(url, json=body([float(i % 5), 0, 0, 0])) for i in range(8)]
                    codes += [r.status_code for r in await asyncio.gather(*batch)]
                return codes

        codes = asyncio.run(load())
        assert codes == [200] * 320
