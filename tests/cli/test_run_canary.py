"""`memoserve run -f` of a service with spec.canary: both versions served (each a process of its
own), the run a proxy splitting the requests by trafficPercent, the banner saying so, and each
version answering from its own cache entries on one real redis-server."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from memoserve_cli.run.canary import Split
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.sample_models import write_mlp_onnx
from tests.cli.test_run import Starter, _env, start  # noqa: F401 (start is a fixture)


@pytest.mark.parametrize("percent", [0, 1, 10, 33, 50, 99, 100])
def test_split_sends_exactly_the_percentage(percent: int) -> None:
    split = Split(percent)
    picks = [split.canary_next() for _ in range(300)]
    for start_at in (0, 37, 200):  # any 100 requests in a row
        assert sum(picks[start_at : start_at + 100]) == percent


def test_split_spreads_the_canary_requests() -> None:
    split = Split(10)
    picks = [split.canary_next() for _ in range(30)]
    assert [i for i, canary in enumerate(picks) if canary] == [9, 19, 29]


def canary_file(tmp_path: Path, percent: int) -> Path:
    v1 = write_mlp_onnx(tmp_path / "v1.onnx", sizes=(4, 8, 3), seed=1)
    v2 = write_mlp_onnx(tmp_path / "v2.onnx", sizes=(4, 8, 3), seed=2)
    document = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "mlp"},
        "spec": {
            "model": {"uri": str(v1), "format": "onnx"},
            "cache": {"external": {"host": "redis.example"}},
            "canary": {"model": {"uri": str(v2), "format": "onnx"}, "trafficPercent": percent},
        },
    }
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_run_serves_both_versions_split_by_the_percentage(
    start: Starter,  # noqa: F811 (the fixture)
    tmp_path: Path,
    own_redis: RedisServer,
) -> None:
    path = canary_file(tmp_path, 25)
    running = start(["-f", str(path), "--redis-url", own_redis.url], _env(tmp_path))
    banner = running.wait_banner(timeout=60)
    assert (
        "note: spec.canary: the stable and the canary version run as processes of their own;"
        in (banner)
    )
    assert "75% of the requests to the stable, 25% to the canary" in banner
    assert f"  canary  25% of requests (onnx, {tmp_path / 'v2.onnx'}); the stable 75%" in banner
    assert f"  model   mlp (onnx, {tmp_path / 'v1.onnx'})" in banner
    url, body = running.curl()
    headers = {"Content-Type": "application/json"}
    answers = [httpx.post(url, content=body, headers=headers, timeout=30) for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 8, answers[0].text
    versions = [a.headers["x-memoserve-version"] for a in answers]
    assert Counter(versions) == {"stable": 6, "canary": 2}
    outputs = {v: a.json()["outputs"] for v, a in zip(versions, answers, strict=True)}
    assert outputs["stable"] != outputs["canary"]  # two models, really
    # Each version's first answer is a miss, though the other had cached the same request.
    seen = [(v, a.headers["x-memoserve-cache"]) for v, a in zip(versions, answers, strict=True)]
    assert seen[:4] == [("stable", "miss"), ("stable", "hit"), ("stable", "hit"),
                        ("canary", "miss")]  # fmt: skip
    assert seen[7] == ("canary", "hit")
    assert running.stop(signal.SIGINT) == 0
    assert "Traceback" not in running.stderr
