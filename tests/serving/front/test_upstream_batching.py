"""Misses batched into upstream calls (upstream/batching.py): what may share a call, rows merged
and split back, and against real servers: memoserve's model tier (a model that records the rows
of each run), and a v2 server that refuses some values or is not row-wise after all
(peer_scripts/v2_misbehaving.py).

Misses queue only while ``upstream_batch_concurrency`` calls are in flight, so these tests make
the first call slow and send the rest while it runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from memoserve_dev.sample_models import MLSERVER_IRIS_TENSORS
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.types import InferenceRequest, Tensor
from memoserve_serving.upstream.backend import UpstreamBackend
from memoserve_serving.upstream.batching import batch_signature, batchable_model, merge, split
from memoserve_serving.upstream.errors import UpstreamTimeout
from memoserve_serving.upstream.http1 import Http1Pool
from tests.serving.front.test_front import front_settings, wait_ready
from tests.serving.front.test_peers import front_for
from tests.serving.front.test_peers import request as flower_request
from tests.support.models import AffineModel
from tests.support.peers import (
    PeerServer,
    calls,
    mlserver,
    rows_per_call,
    runs,
)
from tests.support.serving import ServerThread, serving_settings

PAUSE = 0.6  # the upstream's time per call: the misses sent meanwhile queue
QUEUED = 6
MANY = 24  # misses sent at once


def _spec(name: str, *shape: int) -> TensorSpec:
    return TensorSpec(name, "FP32", shape)


@pytest.mark.parametrize(
    ("inputs", "outputs", "batchable"),
    [
        ((_spec("x", -1, 4),), (_spec("y", -1, 4),), True),
        ((_spec("x", -1, 4), _spec("z", -1)), (_spec("y", -1, 4),), True),
        ((_spec("x", 1, 4),), (_spec("y", -1, 4),), False),  # a fixed batch of one
        ((_spec("x", -1, 4),), (_spec("y", 4),), False),  # an output without the rows
        ((_spec("x", -1, 4),), (_spec("y", -1), _spec("n")), False),  # a scalar output
        ((), (), False),  # MLServer's metadata, unless told: nothing to go by
    ],
)
def test_only_a_model_whose_every_tensor_has_a_variable_first_dimension_is_batched(
    inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], batchable: bool
) -> None:
    assert batchable_model(ModelMetadata(inputs, outputs, "")) is batchable


def _request(rows: int, **extra: Any) -> InferenceRequest:
    data = list(np.arange(rows * 4, dtype=float))
    tensor = {"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": data}
    return decode_request(httpx.Request("POST", "/", json={"inputs": [tensor], **extra}).read())


def test_requests_that_differ_only_in_rows_share_a_signature() -> None:
    one, three = batch_signature(_request(1), ["y"]), batch_signature(_request(3), ["y"])
    assert one is not None
    assert one == three
    assert batch_signature(_request(1), []) != one  # other outputs wanted


@pytest.mark.parametrize(
    "request_",
    [
        _request(1, parameters={"temperature": 0.5}),  # may change the answer
        _request(1, outputs=[{"name": "y", "parameters": {"classification": 2}}]),
        decode_request(
            b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},'
            b'{"name":"z","shape":[2],"datatype":"FP32","data":[1,2]}]}'
        ),  # inputs that disagree on the rows
        decode_request(b'{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1]}]}'),
        decode_request(b'{"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]}'),
    ],
    ids=["request-parameters", "output-parameters", "rows-disagree", "scalar", "no-rows"],
)
def test_a_request_that_cannot_be_split_by_rows_goes_alone(request_: InferenceRequest) -> None:
    assert batch_signature(request_, ["y"]) is None


def test_merged_rows_come_back_to_each_request_in_order() -> None:
    requests = [_request(1), _request(3), _request(2)]
    merged = merge(requests)
    (x,) = merged.inputs
    assert x.shape == (6, 4)
    assert np.array_equal(x.data, np.concatenate([r.inputs[0].data for r in requests]))
    y = Tensor("y", "FP32", (6, 4), 2 * x.data + 1, {"content_type": "np"})
    parts = split((y,), [1, 3, 2])
    assert parts is not None
    for request, (part,) in zip(requests, parts, strict=True):
        assert part.shape == request.inputs[0].shape
        assert np.array_equal(part.data, 2 * request.inputs[0].data + 1)
        assert part.parameters == {"content_type": "np"}  # as MLServer's outputs carry
    assert split((Tensor("y", "FP32", (1, 4), y.data[:1]),), [1, 3, 2]) is None


def test_bytes_rows_merge_as_their_elements() -> None:
    texts = [[b"a", b"bc"], [b"def", b"", b"g", b"hi"]]
    requests = []
    for text in texts:
        array = np.array(text, dtype=object).reshape(-1, 2)
        requests.append(InferenceRequest(None, (Tensor("s", "BYTES", array.shape, array),)))
    (s,) = merge(requests).inputs
    assert s.shape == (3, 2)
    assert s.data.ravel().tolist() == [b"a", b"bc", b"def", b"", b"g", b"hi"]


def _body(row: list[float]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "FP32", "data": row}]}


def _burst(front: ServerThread, rows: list[list[float]]) -> list[httpx.Response]:
    """The first row alone, then the others while its call runs."""

    async def send() -> list[httpx.Response]:
        url = f"{front.url}/v2/models/{front.settings.model_name}/infer"
        async with httpx.AsyncClient(timeout=30) as client:
            first = asyncio.ensure_future(client.post(url, json=_body(rows[0])))
            await asyncio.sleep(PAUSE / 3)
            rest = await asyncio.gather(*(client.post(url, json=_body(row)) for row in rows[1:]))
            return [await first, *rest]

    return asyncio.run(send())


def _rows(count: int, start: int = 0) -> list[list[float]]:
    return [[float(start + i), 1.0, 2.0, 3.0] for i in range(count)]


def _y(row: list[float]) -> list[float]:
    return [2 * value + 1 for value in row]


@pytest.fixture
def slow_model() -> AffineModel:
    return AffineModel(delay=PAUSE)


@pytest.fixture
def model_tier(slow_model: AffineModel) -> Iterator[ServerThread]:
    """memoserve's model tier, its own batching off: each run is one call of the front's."""
    settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with ServerThread(settings, slow_model) as running:
        yield running


def test_misses_queued_behind_a_call_go_upstream_as_one(
    model_tier: ServerThread, slow_model: AffineModel, redis_url: str
) -> None:
    settings = front_settings(model_tier, redis_url, upstream_batch_concurrency=1)
    with ServerThread(settings) as front:
        wait_ready(front)
        rows = _rows(1 + QUEUED)
        answers = _burst(front, rows)
        assert [a.status_code for a in answers] == [200] * len(rows)
        for row, answer in zip(rows, answers, strict=True):
            (y, _) = sorted(answer.json()["outputs"], key=lambda o: o["name"] != "y")
            assert y["data"] == _y(row)
            assert answer.headers["x-memoserve-cache"] == "miss"
        assert slow_model.rows_seen == [1, QUEUED]  # binary tensors: memoserve's tier
        metrics = httpx.get(f"{front.url}/metrics").text
        assert 'memoserve_batch_size_count{model="affine"} 2.0' in metrics
        assert f'memoserve_batch_size_sum{{model="affine"}} {1.0 + QUEUED}' in metrics
        repeats = _burst(front, rows)  # all cached, each as its own answer
        assert [a.headers["x-memoserve-cache"] for a in repeats] == ["hit"] * len(rows)
        assert [a.json()["outputs"] for a in repeats] == [a.json()["outputs"] for a in answers]


def test_batch_size_one_sends_every_miss_alone(
    model_tier: ServerThread, slow_model: AffineModel, redis_url: str
) -> None:
    settings = front_settings(
        model_tier, redis_url, upstream_batch_concurrency=1, upstream_batch_max_size=1
    )
    with ServerThread(settings) as front:
        wait_ready(front)
        answers = _burst(front, _rows(4))
        assert [a.status_code for a in answers] == [200] * 4
        assert slow_model.rows_seen == [1, 1, 1, 1]


@pytest.fixture
def slow(misbehaving_upstream: Callable[..., PeerServer]) -> PeerServer:
    """An upstream that serves calls side by side, each after PAUSE."""
    return misbehaving_upstream("slow", PAUSE)


def test_a_full_batch_goes_at_once_without_waiting_for_a_free_call(
    slow: PeerServer, redis_url: str
) -> None:
    settings = {"upstream_batch_concurrency": 1, "upstream_batch_max_size": 3}
    with front_for(slow, redis_url, **settings) as front:
        wait_ready(front)
        answers = _burst(front, _rows(7))  # one alone, then two full batches of three
        assert [a.status_code for a in answers] == [200] * 7
        assert [a.json()["outputs"][0]["data"] for a in answers] == [_y(r) for r in _rows(7)]
        first, *batches = calls(slow)
        assert first == (1, 1)
        assert batches == [(3, 2), (3, 3)]  # sent while the first call ran


@pytest.mark.parametrize(
    ("settings", "rows"),
    [
        # the first, then one more alone beside it; the rest wait for one of them
        ({"upstream_batch_concurrency": 2}, [1, 1, QUEUED - 1]),
        # no miss may wait, but 64 connections are free: each goes at once, none is shed
        ({"upstream_max_queued": 0}, [1] * (1 + QUEUED)),
    ],
    ids=["concurrency-2", "no-room-to-wait"],
)
def test_which_misses_wait_for_a_batch(
    slow: PeerServer, redis_url: str, settings: dict[str, int], rows: list[int]
) -> None:
    with front_for(slow, redis_url, **settings) as front:
        wait_ready(front)
        answers = _burst(front, _rows(1 + QUEUED))
        assert [a.status_code for a in answers] == [200] * (1 + QUEUED)
        assert rows_per_call(slow) == rows


def test_a_batch_stays_within_the_body_size_the_front_takes(
    slow: PeerServer, redis_url: str
) -> None:
    wide = [[float(i)] * 64 for i in range(7)]  # 256 bytes of FP32 each; JSON bodies ~450
    with front_for(slow, redis_url, max_body_bytes=1000) as front:
        wait_ready(front)
        answers = _burst(front, wide)
        assert [a.status_code for a in answers] == [200] * 7
        assert [a.json()["outputs"][0]["data"] for a in answers] == [_y(row) for row in wide]
        assert rows_per_call(slow) == [1, 3, 3]  # three rows' 768 bytes fit, four do not


def test_a_queued_miss_ends_at_its_deadline_and_one_given_up_on_is_never_sent(
    model_tier: ServerThread, slow_model: AffineModel
) -> None:
    slow_model.delay = 2.0

    async def queue_behind_a_slow_call() -> tuple[float, BaseException | None]:
        pool = Http1Pool(model_tier.url, limit=4)
        backend = UpstreamBackend(
            pool, model_tier.url, "affine", slow_model.metadata, metrics=ServingMetrics("t"),
            timeout=30, max_connections=4, max_queued=4, binary=True, batch_max_rows=8,
            batch_concurrency=1,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(backend.run(_request(1), []))
        await asyncio.sleep(0.3)
        gone = asyncio.ensure_future(backend.run(_request(3), []))  # its client will go away
        await asyncio.sleep(0.1)
        gone.cancel()
        started = loop.time()
        failed = None
        try:
            await backend.run(_request(2), [], deadline=started + 0.5)
        except UpstreamTimeout as exc:
            failed = exc
        took = loop.time() - started
        await first
        await asyncio.sleep(0.3)  # time enough for a next call to reach the model, if one went
        await pool.close()
        return took, failed

    took, failed = asyncio.run(queue_behind_a_slow_call())
    assert isinstance(failed, UpstreamTimeout)  # its deadline, not the caller's cancellation
    assert took < 1.5  # not the 2 s call it queued behind
    assert slow_model.rows_seen == [1]  # both given up on while queued: neither was sent


def test_a_refused_batch_is_asked_again_one_miss_at_a_time(
    misbehaving_upstream: Callable[..., PeerServer], redis_url: str
) -> None:
    refusing = misbehaving_upstream("refuses", PAUSE)
    with front_for(refusing, redis_url, upstream_batch_concurrency=1) as front:
        wait_ready(front)
        rows = _rows(1 + QUEUED)
        rows[2] = [-1.0, 0.0, 0.0, 0.0]  # the one the upstream refuses
        answers = _burst(front, rows)
        assert [a.status_code for a in answers] == [200, 200, 400, *[200] * (QUEUED - 2)]
        assert answers[2].json()["error"] == "x must not be negative"
        for row, answer in zip(rows, answers, strict=True):
            if answer.status_code == 200:
                assert answer.json()["outputs"][0]["data"] == _y(row)
        # JSON both ways (it lists no binary extension); the batch refused, then each alone
        assert rows_per_call(refusing) == [1, QUEUED, *[1] * QUEUED]


def test_an_answer_without_a_row_per_row_sent_turns_batching_off(
    misbehaving_upstream: Callable[..., PeerServer], redis_url: str
) -> None:
    pooled = misbehaving_upstream("pooled", PAUSE)
    with front_for(pooled, redis_url, upstream_batch_concurrency=1) as front:
        wait_ready(front)
        rows = _rows(1 + QUEUED)
        answers = _burst(front, rows)
        assert [a.status_code for a in answers] == [200] * len(rows)
        assert [a.json()["outputs"][0]["data"] for a in answers] == [_y(row) for row in rows]
        assert rows_per_call(pooled) == [1, QUEUED, *[1] * QUEUED]
        before = runs(pooled)
        answers = _burst(front, _rows(1 + QUEUED, start=100))  # new misses: none batched now
        assert [a.status_code for a in answers] == [200] * len(rows)
        assert rows_per_call(pooled)[before:] == [1] * len(rows)


@pytest.fixture
def mlserver_declared(tmp_path: Path, sample_models: Path) -> Iterator[PeerServer]:
    iris = sample_models / "iris.joblib"
    server = mlserver(tmp_path, iris, tensors=MLSERVER_IRIS_TENSORS).start()
    yield server
    server.stop()


def test_mlserver_with_its_tensors_declared_answers_batched_misses_row_by_row(
    mlserver_declared: PeerServer, redis_url: str
) -> None:
    flowers = [[5.1 + i / 10, 3.5, 1.4 + i / 5, 0.2 + i / 10] for i in range(MANY)]
    url = f"{mlserver_declared.url}/v2/models/iris/infer"
    direct = [httpx.post(url, json=flower_request(row), timeout=10).json() for row in flowers]
    with front_for(mlserver_declared, redis_url, upstream_batch_concurrency=1) as front:
        wait_ready(front, timeout=30)

        async def at_once() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                infer = f"{front.url}/v2/models/iris/infer"
                return await asyncio.gather(
                    *(client.post(infer, json=flower_request(r)) for r in flowers)
                )

        answers = asyncio.run(at_once())
        assert [a.status_code for a in answers] == [200] * MANY
        assert [a.json()["outputs"] for a in answers] == [d["outputs"] for d in direct]
        metrics = httpx.get(f"{front.url}/metrics").text
        calls = re.search(r'memoserve_batch_size_count\{model="iris"\} (\S+)', metrics)
        assert calls is not None
        assert float(calls[1]) < MANY  # some went together: MLServer's calls take a while
