"""The serving pods publish their cache counts; the operator reads them (both sides, real Redis)."""

from __future__ import annotations

import time

import httpx

from memoserve_contract import cache_stats
from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.tls import TlsFiles
from memoserve_operator.cache.stats import CacheStatsReader
from memoserve_serving.cache.breaker import CircuitBreaker
from memoserve_serving.cache.nodes import RedisNodes
from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.stats import StatsPublisher
from memoserve_serving.metrics import ServingMetrics
from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.redis_targets import RedisPeer
from tests.support.serving import ServerThread, serving_settings

NOW = 1_000_000 * 60 + 10.0
KEY = cache_stats.stats_key("ml/iris", 1_000_000)


def pod_redis(config: RedisConfig) -> RedisNodes:
    return RedisNodes(config, ServingMetrics("m"), lambda _: CircuitBreaker(3, 1.0))


class Counts:
    def __init__(self) -> None:
        self.hits = self.lookups = 0

    def __call__(self) -> tuple[int, int]:
        return self.hits, self.lookups


async def test_publish_adds_what_is_new_with_the_digest_and_an_expiry(
    own_redis: RedisServer,
) -> None:
    counts = Counts()
    client = pod_redis(RedisConfig.from_url(own_redis.url))
    publisher = StatsPublisher(client, "ml/iris", "sha256:abc", counts, clock=lambda: NOW)
    try:
        assert await publisher.publish()  # nothing counted: nothing sent
        assert own_redis.cli("EXISTS", KEY) == "0"
        counts.hits, counts.lookups = 3, 4
        assert await publisher.publish()
        counts.hits, counts.lookups = 5, 10
        assert await publisher.publish()
        fields = own_redis.cli("HGETALL", KEY).splitlines()
        assert dict(zip(fields[::2], fields[1::2], strict=True)) == {
            "hits": "5",
            "lookups": "10",
            "digest": "sha256:abc",
        }
        assert 0 < int(own_redis.cli("TTL", KEY)) <= cache_stats.KEEP_SECONDS
        own_redis.kill()
        counts.hits, counts.lookups = 6, 12
        assert not await publisher.publish()  # kept for later
        own_redis.start()
        counts.lookups = 13
        assert await publisher.publish()
        # The restarted Redis lost what it had: it holds what was kept and sent after.
        assert own_redis.cli("HGET", KEY, "lookups") == "3"
        assert own_redis.cli("HGET", KEY, "hits") == "1"
    finally:
        await client.close()


async def test_the_operator_reads_what_pods_publish_over_tls_and_auth(
    tls_redis: RedisServer, tls_files: TlsFiles
) -> None:
    assert tls_redis.password is not None
    config = RedisConfig.from_url(
        f"rediss://127.0.0.1:{tls_redis.port}/0",
        password=tls_redis.password,
        ca_file=tls_files.ca_path,
    )
    pods = [pod_redis(config), pod_redis(config)]
    counts = [Counts(), Counts()]
    clock = [NOW]
    for pod, count in zip(pods, counts, strict=True):
        count.hits, count.lookups = 3, 4
        await StatsPublisher(pod, "ml/iris", "sha256:abc", count, clock=lambda: NOW).publish()
    endpoint = RedisEndpoint(
        "127.0.0.1", tls_redis.port, tls=True, password=tls_redis.password,
        ca_cert=tls_files.ca_path.read_text(),
    )  # fmt: skip
    reader = CacheStatsReader(interval=30, keep=600, clock=lambda: clock[0])
    try:
        assert await reader.read("ml/iris", endpoint) == CacheStats(6, 8, "sha256:abc")
        assert await reader.read("ml/other", endpoint) == CacheStats(0, 0, None)
        # Within the interval the last reading is reused: no new connection.
        tls_redis.kill()
        clock[0] = NOW + 10
        assert await reader.read("ml/iris", endpoint) == CacheStats(6, 8, "sha256:abc")
        # Past it, a Redis that does not answer leaves the last good reading for `keep`...
        clock[0] = NOW + 40
        started = time.monotonic()
        assert await reader.read("ml/iris", endpoint) == CacheStats(6, 8, "sha256:abc")
        assert time.monotonic() - started < 5
        # ... and then nothing.
        clock[0] = NOW + 700
        assert await reader.read("ml/iris", endpoint) is None
    finally:
        for pod in pods:
            await pod.close()


def test_a_server_publishes_its_hits_and_lookups(redis_peer: RedisPeer) -> None:
    settings = serving_settings(
        redis_url=redis_peer.url, cache_namespace="ml/affine", cache_stats_seconds=0.05
    )
    model = AffineModel()
    with ServerThread(settings, model) as running, httpx.Client(base_url=running.url) as http:
        for _ in range(4):
            http.post("/v2/models/affine/infer", json=infer_body())
        deadline = time.monotonic() + 10
        while (stats := _published(redis_peer, "ml/affine")).lookups < 4:
            assert time.monotonic() < deadline, stats
            time.sleep(0.05)
    assert stats == CacheStats(3, 4, stats.digest)
    assert stats.digest is not None
    assert len(stats.digest) == 64  # the sha256 of the model files
    assert model.calls == 1


def _published(redis: RedisPeer, namespace: str) -> CacheStats:
    hashes = []
    for key in cache_stats.window_keys(namespace, time.time()):
        fields = redis.cli("HGETALL", key).splitlines()
        hashes.append(dict(zip(fields[::2], fields[1::2], strict=True)))
    return cache_stats.summarize(hashes)
