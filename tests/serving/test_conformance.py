"""NVIDIA's tritonclient (sync and asyncio, JSON and binary tensors) works against memoserve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import ml_dtypes
import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient

from memoserve_contract.settings import ModelFormat
from memoserve_serving.runtimes.loader import load_model
from tests.support.models import DoubleBf16Model
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("http_transport")  # tests/serving/conftest.py

IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


@pytest.fixture(scope="module")
def iris_onnx(sample_models: Path) -> Path:
    return sample_models / "iris.onnx"


@pytest.fixture
def server(iris_onnx: Path, redis_url: str) -> Iterator[ServerThread]:
    settings = serving_settings(
        model_name="iris", model_uri=str(iris_onnx), redis_url=redis_url, model_version="1"
    )
    model = load_model(ModelFormat.ONNX, iris_onnx)
    with ServerThread(settings, model) as running:
        yield running


def expected(iris_onnx: Path) -> dict[str, np.ndarray]:
    model = load_model(ModelFormat.ONNX, iris_onnx)
    return model.predict({model.metadata.inputs[0].name: IRIS}, [])


@pytest.mark.parametrize("binary", [False, True])
def test_sync_client_json_and_binary(server: ServerThread, iris_onnx: Path, binary: bool) -> None:
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", model_version="1")
    metadata = client.get_model_metadata("iris")
    input_name = metadata["inputs"][0]["name"]
    output_names = [o["name"] for o in metadata["outputs"]]
    want = expected(iris_onnx)
    for _ in range(2):  # a miss, then a hit: both must decode identically
        tensor = httpclient.InferInput(input_name, list(IRIS.shape), "FP32")
        tensor.set_data_from_numpy(IRIS, binary_data=binary)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in output_names]
        result = client.infer("iris", [tensor], outputs=outputs, request_id="req-1")
        assert result.get_response()["id"] == "req-1"
        for name in output_names:
            np.testing.assert_allclose(result.as_numpy(name), want[name], rtol=1e-6)
    client.close()


async def test_asyncio_client(server: ServerThread, iris_onnx: Path) -> None:
    client = aioclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        assert await client.is_server_ready()
        metadata = await client.get_model_metadata("iris", model_version="1")
        input_name = metadata["inputs"][0]["name"]
        tensor = aioclient.InferInput(input_name, list(IRIS.shape), "FP32")
        tensor.set_data_from_numpy(IRIS, binary_data=True)
        result = await client.infer("iris", [tensor], model_version="1")
        want = expected(iris_onnx)
        for output in metadata["outputs"]:
            np.testing.assert_allclose(
                result.as_numpy(output["name"]), want[output["name"]], rtol=1e-6
            )
        server_meta = await client.get_server_metadata()
        assert server_meta["name"] == "memoserve"
    finally:
        await client.close()


def test_requested_outputs_share_one_entry_with_the_whole_answer(
    iris_onnx: Path, redis_url: str
) -> None:
    """tritonclient asking for one output (binary) after a request for all of them is a hit:
    the whole answer is cached and the requested outputs are projected from it."""
    settings = serving_settings(model_name="iris", model_uri=str(iris_onnx), redis_url=redis_url)
    model = load_model(ModelFormat.ONNX, iris_onnx)
    want = expected(iris_onnx)
    names = sorted(want)
    with ServerThread(settings, model) as running:
        client = httpclient.InferenceServerClient(url=running.url.removeprefix("http://"))
        input_name = client.get_model_metadata("iris")["inputs"][0]["name"]
        for outputs in [[], [names[0]], [names[1]], names[::-1]]:
            tensor = httpclient.InferInput(input_name, list(IRIS.shape), "FP32")
            tensor.set_data_from_numpy(IRIS)
            requested = [httpclient.InferRequestedOutput(n, binary_data=True) for n in outputs]
            result = client.infer("iris", [tensor], outputs=requested or None)
            answered = [o["name"] for o in result.get_response()["outputs"]]
            assert answered == (outputs or list(want))
            for name in answered:
                np.testing.assert_array_equal(result.as_numpy(name), want[name])
        client.close()
        assert requests_by_cache(running) == {"miss": 1, "hit": 3}


def requests_by_cache(running: ServerThread) -> dict[str, int]:
    """Infer requests by X-Memoserve-Cache result, from the server's own /metrics."""
    counts: dict[str, int] = {}
    for line in httpx.get(running.url + "/metrics").text.splitlines():
        if line.startswith("memoserve_requests_total{"):
            cache = line.split('cache="', 1)[1].split('"', 1)[0]
            counts[cache] = counts.get(cache, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


# Ties, -0.0, the smallest subnormal and a large value: all still finite when doubled.
BF16_X = np.array([[1.5, -0.0, 0.1], [1e38, 2.0**-133, -2]], dtype=ml_dtypes.bfloat16)


@pytest.fixture
def bf16_server(redis_url: str) -> Iterator[tuple[ServerThread, DoubleBf16Model]]:
    model = DoubleBf16Model()
    with ServerThread(serving_settings(model_name="double", redis_url=redis_url), model) as running:
        yield running, model


@pytest.mark.parametrize("binary_output", [True, False], ids=["binary-out", "json-out"])
def test_bf16_from_tritonclient_misses_then_hits_and_json_shares_the_answer(
    bf16_server: tuple[ServerThread, DoubleBf16Model], binary_output: bool
) -> None:
    """tritonclient sends BF16 only as binary data (ml_dtypes arrays); the same numbers in JSON
    are the same request."""
    server, model = bf16_server
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    metadata = client.get_model_metadata("double")
    assert metadata["inputs"][0]["datatype"] == metadata["outputs"][0]["datatype"] == "BF16"
    want = (BF16_X * 2).view("<u2")
    for _ in range(2):  # a miss, then a hit: both must decode identically
        tensor = httpclient.InferInput("x", list(BF16_X.shape), "BF16")
        tensor.set_data_from_numpy(BF16_X, binary_data=True)
        output = httpclient.InferRequestedOutput("y", binary_data=binary_output)
        got = client.infer("double", [tensor], outputs=[output]).as_numpy("y")
        assert got.dtype == ml_dtypes.bfloat16
        assert got.reshape(BF16_X.shape).view("<u2").tolist() == want.tolist()
    client.close()
    assert model.calls == 1
    assert model.dtypes == [np.dtype(ml_dtypes.bfloat16)]

    as_json = {
        "inputs": [{"name": "x", "datatype": "BF16", "shape": [2, 3], "data": BF16_X.tolist()}],
        "outputs": [{"name": "y"}],  # what tritonclient asked for: the key covers it
    }
    response = httpx.post(f"{server.url}/v2/models/double/infer", json=as_json)
    assert response.status_code == 200
    assert response.headers["x-memoserve-cache"] == "hit"
    (y,) = response.json()["outputs"]
    assert y["datatype"] == "BF16"
    assert np.array(y["data"], ml_dtypes.bfloat16).view("<u2").tolist() == want.ravel().tolist()
    assert model.calls == 1


def test_bf16_json_that_overflows_is_a_400_naming_the_tensor(
    bf16_server: tuple[ServerThread, DoubleBf16Model],
) -> None:
    server, model = bf16_server
    body = {"inputs": [{"name": "x", "datatype": "BF16", "shape": [1, 1], "data": [3.4e38]}]}
    response = httpx.post(f"{server.url}/v2/models/double/infer", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "input 'x': data has a value out of range for BF16"}
    assert model.calls == 0
