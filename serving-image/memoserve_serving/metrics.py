"""Prometheus metrics of one serving process, in a registry the app owns (no globals)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


class ServingMetrics:
    """Every metric the server exports. Label children for the one model are bound up front."""

    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.model = model
        r = self.registry
        self.requests = Counter(
            "memoserve_requests",
            "Infer requests by cache result and HTTP status code; the cache labels add up to all.",
            ["model", "cache", "code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "memoserve_request_duration_seconds",
            "Infer request latency, by cache result.",
            ["model", "cache"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_seconds = Histogram(
            "memoserve_model_duration_seconds",
            "Model execution time per (batched) call.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ).labels(model)
        self.batch_size = Histogram(
            "memoserve_batch_size",
            "Requests per model execution.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        ).labels(model)
        # A plain int read at scrape time: the event loop is the only writer, and a gauge's
        # lock per request would cost more than the counting.
        self.inflight = 0
        Gauge(
            "memoserve_inflight_requests", "Infer requests being served.", ["model"], registry=r
        ).labels(model).set_function(lambda: self.inflight)
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
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.l1_hits = Counter(
            "memoserve_cache_l1_hits", "Hits answered by the in-process L1.", ["model"], registry=r
        ).labels(model)

    def request_done(self, cache: str, code: int, seconds: float) -> None:
        # Label lookups cost more than the increment: keep the children of each combination.
        children = self._request_children.get((cache, code))
        if children is None:
            children = (
                self.requests.labels(self.model, cache, str(code)),
                self.request_seconds.labels(self.model, cache),
            )
            self._request_children[(cache, code)] = children
        children[0].inc()
        children[1].observe(seconds)

    def cache_error(self, kind: str) -> None:
        self.cache_errors.labels(self.model, kind).inc()

    def singleflight_join(self, scope: str) -> None:
        self.singleflight_joins.labels(self.model, scope).inc()
