"""Prometheus metrics of one serving process, in a registry the app owns (no globals)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Requests on a hit path take ~100 µs; a GPU batch can take seconds.
_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# How prometheus_client writes a bucket's "le" label (untyped in its stubs).
_bucket_label = cast("Callable[[float], str]", floatToGoString)


class RequestStats(Collector):
    """``memoserve_requests_total`` (by cache result and code) and
    ``memoserve_request_duration_seconds`` (by cache result), kept as plain numbers.

    prometheus_client's Counter and Histogram take a lock and walk the buckets in Python on
    every update: two of them cost ~1.3 µs per request, a tenth of a cache hit's own work. Here
    the event loop is the only writer and /metrics reads on the same loop, so one list per
    (cache, code) holding the bucket counts and the sum does, and the families are built when
    scraped. The histogram's buckets are per cache result, as prometheus_client would have them.
    """

    def __init__(self, model: str, buckets: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self.model = model
        self._bounds = buckets
        self._le = [_bucket_label(bound) for bound in (*buckets, math.inf)]  # "0.0001" .. "+Inf"
        # (cache, code) -> [count in bucket 0, ..., count above the last bound, sum of seconds]
        self._series: dict[tuple[str, int], list[float]] = {}

    def observe(self, cache: str, code: int, seconds: float) -> None:
        series = self._series.get((cache, code))
        if series is None:
            series = self._series[(cache, code)] = [0] * (len(self._bounds) + 2)
        series[bisect_left(self._bounds, seconds)] += 1
        series[-1] += seconds

    def cache_counts(self) -> tuple[int, int]:
        """(hits, lookups): infer requests answered from the cache, and all that had one."""
        hits = lookups = 0
        for (cache, _code), series in self._series.items():
            if cache == "off":
                continue
            count = int(sum(series[:-1]))
            lookups += count
            if cache == "hit":
                hits += count
        return hits, lookups

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "memoserve_requests",
            "Infer requests by cache result and HTTP status code; the cache labels add up to all.",
            labels=["model", "cache", "code"],
        )
        latency = HistogramMetricFamily(
            "memoserve_request_duration_seconds",
            "Infer request latency, by cache result.",
            labels=["model", "cache"],
        )
        by_cache: dict[str, list[float]] = {}
        for (cache, code), series in sorted(self._series.items()):
            requests.add_metric([self.model, cache, str(code)], sum(series[:-1]))
            total = by_cache.setdefault(cache, [0] * len(series))
            for index, value in enumerate(series):
                total[index] += value
        for cache, series in by_cache.items():
            cumulative = 0.0
            buckets = []
            for le, count in zip(self._le, series[:-1], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            latency.add_metric([self.model, cache], buckets, sum_value=series[-1])
        yield requests
        yield latency


class ServingMetrics:
    """Every metric the server exports. Label children for the one model are bound up front."""

    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.model = model
        r = self.registry
        self.requests = RequestStats(model)
        r.register(self.requests)
        self.model_seconds = Histogram(
            "memoserve_model_duration_seconds",
            "Model execution time per (batched) call.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ).labels(model)
        self.batch_size = Histogram(
            "memoserve_batch_size",
            "Requests per model execution (a cache front: misses per upstream call).",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        ).labels(model)
        # A plain int read at scrape time, for the same reason as RequestStats.
        self.inflight = 0
        Gauge(
            "memoserve_inflight_requests", "Infer requests being served.", ["model"], registry=r
        ).labels(model).set_function(lambda: self.inflight)
        # A cache front's misses sent to, or waiting for, the model tier: its load, which the
        # model tier's autoscaler can follow when its server exports none of its own.
        self.upstream_inflight = 0
        Gauge(
            "memoserve_upstream_inflight_requests",
            "Misses a cache front has sent to the model tier or queued for it.",
            ["model"],
            registry=r,
        ).labels(model).set_function(lambda: self.upstream_inflight)
        self.breakers_open = Gauge(
            "memoserve_cache_breaker_open",
            "1 while the circuit breaker of a Redis node is open or half-open (its keys are "
            "served uncached), else 0; a pod with several workers sums theirs.",
            ["model", "node"],
            registry=r,
        )
        self.cache_errors = Counter(
            "memoserve_cache_errors",
            "Cache operations that failed or were skipped (timeout, connection, breaker_open).",
            ["model", "kind"],
            registry=r,
        )
        self.singleflight_joins = Counter(
            "memoserve_singleflight_joins",
            "Misses that waited for an identical in-flight miss instead of running the model.",
            ["model", "scope"],  # scope: local (this process) or remote (another replica's lock)
            registry=r,
        )
        self.l1_hits = Counter(
            "memoserve_cache_l1_hits", "Hits answered by the in-process L1.", ["model"], registry=r
        ).labels(model)
        self.cache_oversize = Counter(
            "memoserve_cache_oversize",
            "Answers served but not cached: larger than the cache's max value size.",
            ["model"],
            registry=r,
        ).labels(model)

        self.shed = Counter(
            "memoserve_shed",
            "Misses refused (503, Retry-After) because the model tier was saturated (the front).",
            ["model"],
            registry=r,
        ).labels(model)
        self.cache_redirects = Counter(
            "memoserve_cache_redirects",
            "Redis Cluster redirects followed: MOVED (slot map changed) or ASK (slot migrating).",
            ["model", "kind"],
            registry=r,
        )

        self.cache_auth_failures = Counter(
            "memoserve_cache_auth_failures",
            "Failures to authenticate to Redis with IAM: no_credentials, token_refresh (no access "
            "token), wrongpass, iam_backend, refused (Redis refused the token).",
            ["model", "reason"],
            registry=r,
        )

    def cache_error(self, kind: str) -> None:
        self.cache_errors.labels(self.model, kind).inc()

    def breaker_state(self, node: str, is_open: bool) -> None:
        self.breakers_open.labels(self.model, node).set(1 if is_open else 0)

    def singleflight_join(self, scope: str) -> None:
        self.singleflight_joins.labels(self.model, scope).inc()

    def cache_redirect(self, kind: str) -> None:
        self.cache_redirects.labels(self.model, kind).inc()

    def cache_auth_failure(self, reason: str) -> None:
        self.cache_auth_failures.labels(self.model, reason).inc()
