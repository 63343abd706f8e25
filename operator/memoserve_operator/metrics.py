"""Prometheus metrics of the operator: reconciles, their duration, writes and errors.

The collectors live in a registry of their own, made by ``Metrics()`` at start-up (nothing at
import time), kept in kopf's memo and served on MEMOSERVE_OPERATOR_METRICS_PORT.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """memoserve_operator_* collectors in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "memoserve_operator_reconciles",
            "Reconciles of InferenceServices by trigger and result "
            "(ok, waiting, invalid, apply_failed, api_error)",
            ["trigger", "result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "memoserve_operator_reconcile_duration_seconds",
            "Time one reconcile took, API calls included",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.writes = Counter(
            "memoserve_operator_writes",
            "Writes to the API server by verb (apply, delete, status) and kind; "
            "zero while nothing changes",
            ["verb", "kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "memoserve_operator_api_errors",
            "Failed API calls by HTTP status (0: no answer)",
            ["status"],
            registry=self.registry,
        )
