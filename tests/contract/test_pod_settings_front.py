"""The split's pod settings (docs/front.md): what the front and the model tier are told."""

from __future__ import annotations

from typing import Any

import pytest

from memoserve_contract.pod_settings import (
    cores,
    front_env,
    front_settings,
    model_env,
    model_identity,
    model_settings,
)
from memoserve_contract.settings import ServingSettings
from tests.operator.helpers import make_isvc

TRITON = {"image": "tritonserver:24.08", "command": ["tritonserver"], "args": ["--a"]}


def split(**spec: Any) -> Any:
    return make_isvc(front={"enabled": True} | spec.pop("front", {}), **spec)


def server(**fields: Any) -> Any:
    return split(model={"uri": "gs://m/repo/", "server": TRITON | fields})


@pytest.mark.parametrize(
    ("isvc", "cpu", "want"),
    [
        (split(), None, {"upstream_url": "http://iris-model.ml.svc:8080", "workers": 1}),
        (split(), "1500m", {"workers": 2}),
        (split(), 4, {"workers": 4}),
        (split(front={"workers": 3}), "8", {"workers": 3}),
        (split(front={"maxQueuedMisses": 10}), None, {"upstream_max_queued": 10}),
        (split(), None, {"upstream_batch_max_size": 32}),  # the image's default
        (split(front={"maxBatchSize": 1}), None, {"upstream_batch_max_size": 1}),
        (split(), None, {"upstream_batch_concurrency": 1}),  # the image's default
        (split(front={"maxCallsInFlight": 3}), None, {"upstream_batch_concurrency": 3}),
        (server(port=8000), None, {"upstream_url": "http://iris-model.ml.svc:8000"}),
        (server(), None, {"upstream_model_name": "iris"}),
        (server(modelName="ranker"), None, {"upstream_model_name": "ranker"}),
        (split(model={"uri": "/m", "format": "onnx"}), None, {"upstream_model_name": None}),
    ],
)
def test_front_settings(isvc: Any, cpu: Any, want: dict[str, Any]) -> None:
    settings = front_settings(isvc, default_drain_seconds=15, cpu_request=cpu)
    assert {name: getattr(settings, name) for name in want} == want
    assert settings.model_format is None  # no model here
    assert settings.model_identity == model_identity(isvc)


def test_front_env_is_read_back_as_a_front() -> None:
    isvc = split(cache={"external": {"host": "r"}}, grpc={"enabled": True})
    env = front_env(isvc, default_drain_seconds=15, cpu_request="2")
    read = ServingSettings.from_env(env)
    assert read.upstream_url == "http://iris-model.ml.svc:8080"
    assert (read.cache_enabled, read.cache_namespace, read.grpc_enabled) == (True, "ml/iris", True)
    assert "MEMOSERVE_MODEL_URI" not in env


def test_model_tier_has_no_cache_and_no_grpc() -> None:
    isvc = split(
        cache={"external": {"host": "r"}}, grpc={"enabled": True}, batching={"maxBatchSize": 8}
    )
    settings = model_settings(isvc, default_drain_seconds=15)
    assert (settings.cache_enabled, settings.grpc_enabled) == (False, False)
    assert (settings.model_uri, settings.batch_max_size) == ("gs://my-models/iris/", 8)
    env = model_env(isvc, default_drain_seconds=15)
    assert not any("REDIS" in name for name in env)
    assert ServingSettings.from_env(env) == settings


@pytest.mark.parametrize(
    "other",
    [
        {"model": {"uri": "gs://m/other/", "server": TRITON}},
        {"model": {"uri": "gs://m/repo/", "server": TRITON | {"image": "tritonserver:24.09"}}},
        {"model": {"uri": "gs://m/repo/", "server": TRITON | {"args": ["--b"]}}},
        {"model": {"uri": "gs://m/repo/", "server": TRITON | {"command": ["x"]}}},
        {"model": {"uri": "gs://m/repo/", "version": "2", "server": TRITON}},
    ],
)
def test_model_identity_changes_with_what_decides_the_answers(other: dict[str, Any]) -> None:
    assert model_identity(split(**other)) != model_identity(server())


def test_model_identity_ignores_what_does_not() -> None:
    same = split(model={"uri": "gs://m/repo/", "server": TRITON | {"port": 9000}}, minReplicas=3)
    assert model_identity(same) == model_identity(server())


@pytest.mark.parametrize(
    ("cpu", "want"),
    [(None, 1), ("100m", 1), ("1", 1), ("1001m", 2), (2, 2), ("2.5", 3), ("1k", 64)],
)
def test_cores(cpu: Any, want: int) -> None:
    assert cores(cpu) == want


def test_transports_reach_both_tiers_and_grpc_only_the_front() -> None:
    isvc = split(grpc={"enabled": True}, transports={"http": "uvicorn", "grpc": "aio"})
    front = front_env(isvc, default_drain_seconds=15, cpu_request=None)
    model = model_env(isvc, default_drain_seconds=15)
    assert (front["MEMOSERVE_HTTP_TRANSPORT"], front["MEMOSERVE_GRPC_TRANSPORT"]) == (
        "uvicorn",
        "aio",
    )
    assert model["MEMOSERVE_HTTP_TRANSPORT"] == "uvicorn"
    assert "MEMOSERVE_GRPC_TRANSPORT" not in model  # the model tier serves no gRPC
