"""Several workers' metrics merged into the pod's (worker_metrics.py), through real files and
prometheus_client's own multiprocess merge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from memoserve_serving.http.worker_metrics import WorkerMetrics
from memoserve_serving.metrics import ServingMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes) -> Samples:
    """Every sample of an exposition but creation times, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def first_worker(metrics: ServingMetrics) -> None:
    for seconds in (0.00009, 0.0002, 0.0002):
        metrics.requests.observe("hit", 200, seconds)
    metrics.requests.observe("miss", 200, 0.02)
    metrics.model_seconds.observe(0.019)
    metrics.batch_size.observe(1)
    metrics.inflight = 2
    metrics.upstream_inflight = 1
    metrics.l1_hits.inc()


def second_worker(metrics: ServingMetrics) -> None:
    metrics.requests.observe("hit", 200, 0.0003)
    metrics.requests.observe("miss", 200, 0.3)
    metrics.requests.observe("bypass", 400, 0.00005)
    metrics.model_seconds.observe(0.29)
    metrics.batch_size.observe(3)
    metrics.inflight = 3
    metrics.cache_error("timeout")
    metrics.singleflight_join("remote")
    metrics.shed.inc()


def test_the_merge_is_what_one_process_seeing_everything_exports(tmp_path: Path) -> None:
    one, two = ServingMetrics("iris"), ServingMetrics("iris")
    first_worker(one)
    second_worker(two)
    everything = ServingMetrics("iris")
    first_worker(everything)
    second_worker(everything)
    everything.inflight = 2 + 3  # in flight in either worker
    everything.upstream_inflight = 1
    shared_one = WorkerMetrics(one.registry, tmp_path, pid=101)
    shared_two = WorkerMetrics(two.registry, tmp_path, pid=102)
    shared_two.write()

    merged = samples(shared_one.exposition())

    expected = samples(generate_latest(everything.registry))
    assert merged.keys() == expected.keys()
    for key, value in expected.items():
        assert merged[key] == pytest.approx(value), key
    assert (
        merged[("memoserve_requests_total", (("cache", "hit"), ("code", "200"), ("model", "iris")))]
        == 4
    )


def test_another_workers_figures_are_those_it_last_wrote(tmp_path: Path) -> None:
    one, two = ServingMetrics("iris"), ServingMetrics("iris")
    shared_one = WorkerMetrics(one.registry, tmp_path, pid=101)
    shared_two = WorkerMetrics(two.registry, tmp_path, pid=102)

    def hits() -> float:
        key = ("memoserve_requests_total", (("cache", "hit"), ("code", "200"), ("model", "iris")))
        return samples(shared_one.exposition())[key]

    one.requests.observe("hit", 200, 0.0001)
    two.requests.observe("hit", 200, 0.0001)
    shared_two.write()
    assert hits() == 2
    two.requests.observe("hit", 200, 0.0001)
    one.requests.observe("hit", 200, 0.0001)
    assert hits() == 3  # this worker's own figures are current, the other's as last written
    shared_two.write()
    assert hits() == 4


async def test_a_worker_keeps_writing_until_cancelled(tmp_path: Path) -> None:
    one, two = ServingMetrics("iris"), ServingMetrics("iris")
    shared_one = WorkerMetrics(one.registry, tmp_path, pid=101)
    shared_two = WorkerMetrics(two.registry, tmp_path, pid=102)
    writing = asyncio.create_task(shared_two.keep_writing(interval=0.01))
    two.shed.inc()
    key = ("memoserve_shed_total", (("model", "iris"),))
    for _ in range(200):
        if samples(shared_one.exposition()).get(key) == 1:
            break
        await asyncio.sleep(0.01)
    assert samples(shared_one.exposition())[key] == 1
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
