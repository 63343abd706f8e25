"""A canary and its stable version on one real redis-server, each configured with the plain
environment the operator renders for its Deployment (NAME, NAME-canary): the same cache
namespace, and still neither ever answers with the other's cached answer, because each key holds
its model's digest. After a promotion the stable pods (now running the canary's model) find the
canary's answers. Each version's cache counts land apart, where the operator reads them for
status (its hit ratio and digest)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memoserve_contract.canary import canary_stats_namespace
from memoserve_contract.pod_settings import cache_namespace
from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import ServingSettings
from memoserve_dev.ports import free_port
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.sample_models import write_mlp_onnx
from memoserve_operator.builders import build_all
from memoserve_operator.cache.stats import CacheStatsReader
from tests.operator.helpers import SETTINGS
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


def pod_settings(
    isvc: InferenceService, deployment: str, redis_url: str, model_dir: Path
) -> ServingSettings:
    """What a pod of ``deployment`` is told (its plain env, as the operator renders it), with the
    test's Redis (a Secret's, in the pod) and a local port. Stats are published once, on exit."""
    (rendered,) = [
        o
        for o in build_all(isvc, SETTINGS)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment
    ]
    container = rendered["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return ServingSettings.from_env(
        env,
        redis_url=redis_url,
        host="127.0.0.1",
        port=free_port(),
        grpc_enabled=False,
        model_dir=model_dir,
        termination_log=None,
        cache_stats_seconds=3600,
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
    stable_settings = pod_settings(isvc, "mlp", redis_url, tmp_path)
    canary_settings = pod_settings(isvc, "mlp-canary", redis_url, tmp_path)
    assert stable_settings.cache_namespace == canary_settings.cache_namespace == "ml/mlp"
    with ServerThread(stable_settings) as stable, ServerThread(canary_settings) as trial:
        yield stable, trial


def test_the_canary_never_serves_the_stable_answer(
    servers: tuple[ServerThread, ServerThread], own_redis: RedisServer
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

    for server in servers:  # stopped: their last publish of the cache counts
        server.__exit__(None, None, None)
    # What the operator reads for status: each version's own hit ratio and model digest.
    reader = CacheStatsReader()
    endpoint = RedisEndpoint(own_redis.host, own_redis.port)
    isvc = service(Path("/v1"), Path("/v2"))
    stable_stats = asyncio.run(reader.read(cache_namespace(isvc), endpoint))
    canary_stats = asyncio.run(reader.read(canary_stats_namespace(isvc), endpoint))
    assert stable_stats is not None
    assert canary_stats is not None
    assert (stable_stats.hits, stable_stats.lookups) == (2, 3)
    assert (canary_stats.hits, canary_stats.lookups) == (1, 2)
    assert stable_stats.digest != canary_stats.digest


def test_the_promoted_pods_find_the_canary_answers(
    versions: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    v1, v2 = versions
    with ServerThread(pod_settings(service(v1, v2), "mlp-canary", redis_url, tmp_path)) as trial:
        _, answer = infer(trial)
    promoted = service(v2, None)  # canary.model moved into spec.model
    with ServerThread(pod_settings(promoted, "mlp", redis_url, tmp_path)) as stable:
        assert infer(stable) == ("hit", answer)
