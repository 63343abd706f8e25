"""The request metrics kept as plain numbers must expose exactly what prometheus_client's own
Counter and Histogram would for the same observations."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from memoserve_serving.cache.base import CacheResult
from memoserve_serving.metrics import _LATENCY_BUCKETS, RequestStats, ServingMetrics


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")  # prometheus_client's own timestamps
    }


def _reference(observations: Sequence[tuple[str, int, float]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter("memoserve_requests", "", ["model", "cache", "code"], registry=registry)
    latency = Histogram(
        "memoserve_request_duration_seconds",
        "",
        ["model", "cache"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    for cache, code, seconds in observations:
        requests.labels("iris", cache, str(code)).inc()
        latency.labels("iris", cache).observe(seconds)
    return registry


def _ours(observations: Sequence[tuple[str, int, float]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    stats = RequestStats("iris")
    registry.register(stats)
    for cache, code, seconds in observations:
        stats.observe(cache, code, seconds)
    return registry


@pytest.mark.parametrize("seed", range(5))
def test_request_stats_expose_what_prometheus_client_would(seed: int) -> None:
    rng = random.Random(seed)
    results = [CacheResult.HIT, CacheResult.MISS, CacheResult.BYPASS, CacheResult.ERROR]
    # Bucket bounds themselves are included: "le" means less than or equal.
    durations = [*_LATENCY_BUCKETS, 0.0, 20.0]
    observations = [
        (
            rng.choice(results),
            rng.choice([200, 200, 400, 404, 500]),
            rng.choice(durations) if rng.random() < 0.3 else rng.expovariate(500),
        )
        for _ in range(rng.randrange(1, 400))
    ]
    ours = _samples(_ours(observations))
    reference = _samples(_reference(observations))
    assert ours.keys() == reference.keys()
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value), name


def test_nothing_observed_exposes_no_series() -> None:
    assert _samples(_ours([])) == {}


def test_serving_metrics_count_requests_in_its_registry() -> None:
    metrics = ServingMetrics("iris")
    metrics.requests.observe(CacheResult.HIT, 200, 0.0002)
    metrics.requests.observe(CacheResult.HIT, 200, 0.0003)
    metrics.requests.observe(CacheResult.MISS, 200, 0.02)
    samples = _samples(metrics.registry)
    hit = (("cache", "hit"), ("code", "200"), ("model", "iris"))
    assert samples[("memoserve_requests_total", hit)] == 2
    assert samples[("memoserve_request_duration_seconds_count", hit[:1] + hit[2:])] == 2
    le = (("cache", "hit"), ("le", "0.00025"), ("model", "iris"))
    assert samples[("memoserve_request_duration_seconds_bucket", le)] == 1
