"""One observed run for the module: a real Prometheus scraping a memoserve front with its
memoserve upstream (real redis-server) under a short load, the operator on the e2e control plane,
and kube-state-metrics exporting what the operator made there.

Prometheus adds to each target the labels a GKE scrape gives it (namespace, pod, and the
PodMonitoring's memoserve_service: operator/memoserve_operator/builders/pod_monitoring.py), so the
dashboard's variables select these series as they would in a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from memoserve_dev.redis_server import RedisServer
from memoserve_operator.builders.meta import SERVICE_METRIC_LABEL
from tests.observability.cluster import (
    OPERATOR_NAMESPACE,
    QUOTA_NAMESPACE,
    SPLIT_SERVICE,
    Cluster,
)
from tests.observability.load import FrontLoad
from tests.observability.prometheus import SCRAPE_SECONDS, PrometheusServer, Target
from tests.support.controlplane import ControlPlaneError
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

NAMESPACE = "shop"
SERVICE = "ranker"
MINIMAL_SERVICE = {"model": {"uri": "gs://my-models/iris/sklearn/", "format": "sklearn"}}
JOBS = ("front", "model", "operator", "kube-state-metrics")


@dataclass(frozen=True)
class Observation:
    prometheus: PrometheusServer
    start: float  # when the load began (a range query's start)
    load: FrontLoad


def _serving(stack: ExitStack, redis: RedisServer) -> tuple[ServerThread, ServerThread]:
    """The model tier (memoserve's runtime, uncached, slow enough for misses to overlap) and
    the front: one connection to it and no queue, so a second miss at once is shed; the
    breaker opens after 3 failures, for a second at a time."""
    upstream = ServerThread(
        serving_settings(cache_enabled=False, grpc_enabled=False), AffineModel(delay=0.1)
    )
    stack.enter_context(upstream)
    front = ServerThread(
        serving_settings(
            upstream_url=upstream.url,
            redis_url=redis.url,
            model_uri="",
            model_format=None,
            model_identity="observability",
            grpc_enabled=False,
            upstream_max_connections=1,
            upstream_max_queued=0,
            redis_breaker_failures=3,
            redis_breaker_reset_seconds=1.0,
        )
    )
    stack.enter_context(front)
    return upstream, front


def _targets(upstream: str, front: str, cluster: Cluster) -> list[Target]:
    def pod(name: str) -> dict[str, str]:
        return {"namespace": NAMESPACE, SERVICE_METRIC_LABEL: SERVICE, "pod": name}

    return [
        Target("front", front, pod(f"{SERVICE}-6f7d9c-x2k4q")),
        Target("model", upstream, pod(f"{SERVICE}-model-59b8d-r7wzn")),
        Target(
            "operator",
            f"127.0.0.1:{cluster.operator_port}",
            {"namespace": OPERATOR_NAMESPACE, "pod": "memoserve-operator-7c4b9-9kq2m"},
        ),
        Target("kube-state-metrics", f"127.0.0.1:{cluster.ksm_port}", honor_labels=True),
    ]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observation]:
    workdir = tmp_path_factory.mktemp("observability")
    with ExitStack() as stack, ThreadPoolExecutor(1) as background:
        # The cluster starts while the serving side is loaded: ~15 s each.
        cluster = Cluster(workdir)
        stack.callback(cluster.stop)
        cluster_started = background.submit(
            cluster.start,
            {(NAMESPACE, SERVICE): SPLIT_SERVICE, (QUOTA_NAMESPACE, "iris"): MINIMAL_SERVICE},
        )

        redis = RedisServer(workdir / "redis")
        redis.start()
        stack.callback(redis.stop)
        upstream, front = _serving(stack, redis)
        prometheus = PrometheusServer(
            workdir / "prometheus", _targets(upstream.url[7:], front.url[7:], cluster)
        ).start()
        stack.callback(prometheus.stop)
        for job in ("front", "model"):
            prometheus.wait_for(f'up{{job="{job}"}} == 1')

        load = FrontLoad(front.url)
        stack.callback(load.close)
        start = time.time()
        # Each phase twice, scrapes apart: a series' first sample already holds the first
        # round's counts, so only a second round makes its rate() non-zero.
        for _ in range(2):
            load.round()
            time.sleep(2 * SCRAPE_SECONDS)
        redis.stop()
        for _ in range(2):
            load.cache_down(5)
            time.sleep(2 * SCRAPE_SECONDS)

        try:
            cluster_started.result()
        except ControlPlaneError as exc:
            pytest.fail(f"the e2e control plane did not start: {exc}", pytrace=False)
        # What only the cluster makes, and the last of the load, seen by a scrape.
        for expr in (
            'memoserve_cache_errors_total{kind="breaker_open"}',
            f'kube_deployment_status_replicas_available{{deployment="{SERVICE}-model"}} > 0',
            f'kube_horizontalpodautoscaler_spec_max_replicas{{horizontalpodautoscaler="{SERVICE}"}}',
            'memoserve_operator_reconciles_total{result="apply_failed"}',
        ):
            prometheus.wait_for(expr, timeout=90)
        time.sleep(2 * SCRAPE_SECONDS)  # two more samples of each: a rate() has two points
        yield Observation(prometheus, start, load)
