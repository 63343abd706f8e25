"""A canary and its stable version on one real redis-server, configured as the operator configures
their pods (pod_env of the service and of canary_service): the same cache namespace, and still
neither ever answers with the other's cached answer, because each key holds its model's digest.
After a promotion the stable pods (now running the canary's model) find the canary's answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memoserve_contract.canary import canary_service
from memoserve_contract.pod_settings import pod_env
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import ServingSettings
from memoserve_dev.ports import free_port
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.sample_models import write_mlp_onnx
from tests.support.serving import ServerThread

BODY = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two models of one shape whose answers differ (other weights)."""
    out = tmp_path_factory.mktemp("versions")
    v1 = write_mlp_onnx(out / "v1.onnx", sizes=(4, 8, 3), seed=1)
    v2 = write_mlp_onnx(out / "v2.onnx", sizes=(4, 8, 3), seed=2)
    return v1, v2


def service(v1: Path, v2: Path | None) -> InferenceService:
    spec: dict[str, Any] = {
        "model": {"uri": str(v1), "format": "onnx"},
        "cache": {"external": {"host": "unused"}},
    }
    if v2 is not None:
        spec["canary"] = {"model": {"uri": str(v2), "format": "onnx"}, "trafficPercent": 10}
    body = {"metadata": {"name": "mlp", "namespace": "ml"}, "spec": spec}
    return InferenceService.from_body(body)


def pod_settings(isvc: InferenceService, redis_url: str, model_dir: Path) -> ServingSettings:
    """What a pod of ``isvc`` is told (its env), with the test's Redis and a local port."""
    return ServingSettings.from_env(
        pod_env(isvc, default_drain_seconds=0),
        redis_url=redis_url,
        host="127.0.0.1",
        port=free_port(),
        grpc_enabled=False,
        model_dir=model_dir,
        cache_stats_seconds=0,
    )


@pytest.fixture
def redis_url(own_redis: RedisServer) -> str:
    """An empty redis-server of this test's own: what one version caches, the other finds."""
    return own_redis.url


def infer(server: ServerThread) -> tuple[str, Any]:
    response = httpx.post(f"{server.url}/v2/models/mlp/infer", json=BODY, timeout=30)
    response.raise_for_status()
    return response.headers["x-memoserve-cache"], response.json()["outputs"][0]["data"]


@pytest.fixture
def servers(
    versions: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> Iterator[tuple[ServerThread, ServerThread]]:
    isvc = service(*versions)
    canary = canary_service(isvc)
    assert canary is not None
    stable_settings = pod_settings(isvc, redis_url, tmp_path)
    canary_settings = pod_settings(canary, redis_url, tmp_path)
    assert stable_settings.cache_namespace == canary_settings.cache_namespace == "ml/mlp"
    with ServerThread(stable_settings) as stable, ServerThread(canary_settings) as trial:
        yield stable, trial


def test_the_canary_never_serves_the_stable_answer(
    servers: tuple[ServerThread, ServerThread],
) -> None:
    stable, canary = servers
    assert infer(stable)[0] == "miss"
    cached, answer = infer(stable)
    assert cached == "hit"
    trial, canary_answer = infer(canary)
    assert trial == "miss"  # the stable's entry is not the canary's
    assert canary_answer != answer
    assert infer(canary) == ("hit", canary_answer)
    assert infer(stable) == ("hit", answer)  # nor the other way round


def test_the_promoted_pods_find_the_canary_answers(
    versions: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    v1, v2 = versions
    canary = canary_service(service(v1, v2))
    assert canary is not None
    with ServerThread(pod_settings(canary, redis_url, tmp_path)) as trial:
        _, answer = infer(trial)
    promoted = service(v2, None)  # canary.model moved into spec.model
    with ServerThread(pod_settings(promoted, redis_url, tmp_path)) as stable:
        assert infer(stable) == ("hit", answer)
