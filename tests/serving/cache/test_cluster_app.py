"""The whole server on one primary and on a cluster, given only ``--redis-url``: the same answers
and X-Memoserve-Cache results, the cluster's keys on every shard."""

from __future__ import annotations

import httpx

from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.redis_targets import RedisPeer
from tests.support.serving import ServerThread, serving_settings

ROWS = [[float(i), 1.0, 2.0, 3.0] for i in range(40)]


def test_misses_then_hits_with_only_the_url_given(redis_peer: RedisPeer) -> None:
    model = AffineModel()
    settings = serving_settings(redis_url=redis_peer.url, cache_namespace="ml/affine")
    with ServerThread(settings, model) as running, httpx.Client(base_url=running.url) as http:
        for expected in ("miss", "hit"):
            for row in ROWS:
                response = http.post("/v2/models/affine/infer", json=infer_body(row))
                assert response.status_code == 200
                assert response.headers["x-memoserve-cache"] == expected
                y = response.json()["outputs"][0]["data"]
                assert y == [2 * x + 1 for x in row]
        metrics = http.get("/metrics").text
    assert model.calls == len(ROWS)
    assert 'memoserve_cache_errors_total{kind="error_reply"' not in metrics
    assert all(count > 0 for count in redis_peer.keys_per_primary())
