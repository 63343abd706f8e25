"""The server with its real peers: a TLS+AUTH Redis, the in-process L1, a model from gs://."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memoserve_contract.settings import HttpTransport
from memoserve_dev.redis_server import RedisServer
from tests.serving.test_app import infer_body
from tests.support.gcs import BUCKET, GcsEmulator
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

URL = "/v2/models/affine/infer"
IRIS_BODY = {
    "inputs": [
        {"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
    ]
}


def test_memorystore_style_redis_with_auth_and_tls(tls_redis: RedisServer) -> None:
    assert tls_redis.tls is not None
    settings = serving_settings(
        redis_url=f"rediss://127.0.0.1:{tls_redis.port}/0",
        redis_password=tls_redis.password,
        redis_ca_file=tls_redis.tls.ca_path,
    )
    model = AffineModel()
    with ServerThread(settings, model) as running, httpx.Client(base_url=running.url) as http:
        results = [http.post(URL, json=infer_body()).headers["x-memoserve-cache"] for _ in range(2)]
    assert results == ["miss", "hit"]
    assert model.calls == 1
    assert tls_redis.cli("DBSIZE") == "1"


def test_wrong_auth_string_degrades_to_uncached(tls_redis: RedisServer) -> None:
    assert tls_redis.tls is not None
    settings = serving_settings(
        redis_url=f"rediss://127.0.0.1:{tls_redis.port}/0",
        redis_password="not-the-auth-string",
        redis_ca_file=tls_redis.tls.ca_path,
    )
    with (
        ServerThread(settings, AffineModel()) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        responses = [http.post(URL, json=infer_body()) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert {r.headers["x-memoserve-cache"] for r in responses} == {"error"}


def test_l1_answers_hot_questions_while_redis_is_away(own_redis: RedisServer) -> None:
    settings = serving_settings(redis_url=own_redis.url, l1_max_bytes=1 << 20, l1_ttl_seconds=60)
    model = AffineModel()
    with ServerThread(settings, model) as running, httpx.Client(base_url=running.url) as http:
        assert http.post(URL, json=infer_body()).headers["x-memoserve-cache"] == "miss"
        own_redis.kill()
        assert http.post(URL, json=infer_body()).headers["x-memoserve-cache"] == "hit"
    assert model.calls == 1


@pytest.fixture
def iris_in_gcs(sample_models: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from google.cloud import storage

    emulator = GcsEmulator()
    emulator.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        bucket = storage.Client(project="test").bucket(BUCKET)
        bucket.blob("iris/v1/model.onnx").upload_from_filename(str(sample_models / "iris.onnx"))
        yield f"gs://{BUCKET}/iris/v1/"
    finally:
        emulator.stop()


def test_model_loaded_from_gcs_at_startup(iris_in_gcs: str, tmp_path: Path, redis_url: str) -> None:
    settings = serving_settings(
        model_name="iris", model_uri=iris_in_gcs, model_dir=tmp_path, redis_url=redis_url
    )
    with ServerThread(settings) as running, httpx.Client(base_url=running.url) as http:
        assert http.get("/v2/health/ready").status_code == 200
        assert http.get("/v2/models/iris").json()["inputs"][0]["name"] == "float_input"
        first = http.post("/v2/models/iris/infer", json=IRIS_BODY)
        second = http.post("/v2/models/iris/infer", json=IRIS_BODY)
    assert first.status_code == 200
    assert (first.headers["x-memoserve-cache"], second.headers["x-memoserve-cache"]) == (
        "miss",
        "hit",
    )
    assert first.json()["outputs"] == second.json()["outputs"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
tensor_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["x", "y", "", "X"]) | st.text(max_size=4),
        "shape": st.lists(st.integers(-2, 5), max_size=3) | json_values,
        "datatype": st.sampled_from(["FP32", "INT8", "BYTES", "BOOL", "FP16", "BF16", "nope"])
        | json_values,
        "data": st.lists(
            st.integers(-300, 300) | st.floats() | st.booleans() | st.text(max_size=3), max_size=6
        )
        | json_values,
        "parameters": json_values,
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "inputs": st.lists(tensor_like, max_size=3) | json_values,
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["y", "sum", "zz"])}), max_size=2
        )
        | json_values,
        "parameters": json_values,
    },
)


@pytest.fixture(scope="module", params=list(HttpTransport), ids=str)
def fuzz_server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    with ServerThread(serving_settings(http_transport=request.param), AffineModel()) as running:
        yield running


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=bodies,
    header=st.none()
    | st.integers(-5, 400).map(str)
    | st.text(alphabet="ab-1x.", min_size=1, max_size=4),
)
def test_random_requests_never_get_a_5xx(
    fuzz_server: ServerThread, body: dict[str, object], header: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["inference-header-content-length"] = header
    # Python's json writes NaN/Infinity (invalid JSON): the server must say 400, not crash.
    content = json.dumps(body).encode() + b"\x00\x01binary-tail"[: len(header or "")]
    response = httpx.post(fuzz_server.url + URL, content=content, headers=headers)
    assert 200 <= response.status_code < 500, (body, header, response.text)
    if response.status_code >= 400:
        assert response.json()["error"]
