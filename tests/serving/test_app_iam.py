"""A serving pod with redis_auth=iam, end to end: real uvicorn, the real google-auth against the
local metadata server, real redis-server."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from memoserve_dev.metadata_server import MetadataServer
from memoserve_dev.redis_server import RedisServer
from memoserve_serving.cache.iam import FIX
from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

URL = "/v2/models/affine/infer"


def test_a_pod_without_credentials_serves_uncached_and_says_why(
    gce_metadata: MetadataServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    gce_metadata.gce = False  # no Workload Identity, no key file: no credentials at all
    settings = serving_settings(redis_url=redis_url, redis_auth="iam")
    with (
        ServerThread(settings, AffineModel()) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        ready = http.get("/v2/health/ready")
        answers = [http.post(URL, json=infer_body()) for _ in range(2)]
        metrics = http.get("/metrics").text
    assert ready.status_code == 200  # still ready: it answers every request, uncached
    body = ready.json()
    assert body["ready"] is True
    assert body["cache"]["status"] == "degraded"
    assert "no Application Default Credentials" in body["cache"]["problem"]
    assert FIX in body["cache"]["problem"]
    assert [a.status_code for a in answers] == [200, 200]
    assert {a.headers["x-memoserve-cache"] for a in answers} == {"error"}
    assert answers[0].json()["outputs"] == answers[1].json()["outputs"]
    assert (
        'memoserve_cache_auth_failures_total{model="affine",reason="no_credentials"} 1.0' in metrics
    )
    (line,) = [
        r.getMessage()
        for r in caplog.records
        if r.name == "memoserve_serving.cache.iam" and r.levelno == logging.ERROR
    ]
    assert "no Application Default Credentials" in line
    assert "roles/memorystore.dbConnectionUser" in line
    assert "roles/redis.dbConnectionUser" in line


def test_a_pod_with_workload_identity_caches(gce_metadata: MetadataServer, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        redis.cli("ACL", "SETUSER", "default", "on", "resetpass", ">ya29.pod-token", "~*", "+@all")
        gce_metadata.set_token("ya29.pod-token")
        settings = serving_settings(redis_url=f"redis://127.0.0.1:{redis.port}/0", redis_auth="iam")
        with (
            ServerThread(settings, AffineModel()) as running,
            httpx.Client(base_url=running.url) as http,
        ):
            ready = http.get("/v2/health/ready")
            results = [
                http.post(URL, json=infer_body()).headers["x-memoserve-cache"] for _ in range(2)
            ]
    assert ready.json() == {"ready": True}  # no cache detail: nothing wrong
    assert results == ["miss", "hit"]
