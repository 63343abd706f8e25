"""A cache hit through the cluster client next to a hit on one primary, in one run, one core.

Like inprocess.py (the app called directly, no HTTP, 32 concurrent loops), twice: one app's
cache is a lone redis-server, the other's a Redis Cluster of 3 primaries (both given only a
redis:// URL; the cluster's is one node's). Passes alternate between the two so that the
machine's drift hits both alike. Per target: the best pass's CPU per request (µs; requests per
core = 1e6 / that) and the p99 of the in-process latency (from the call into the app to its
last response message, at 32 in flight by default) over all passes; then the cluster's share
of the one primary's throughput, from the best passes and as the median of side-by-side
passes. 64 distinct requests, all cached before measuring, so the cluster's hits land on
every shard.

    taskset -c 0 .venv/bin/python bench/serving/cluster_hit.py [--passes 7] [--requests 32000]

Run it pinned, with nothing else busy; every redis-server runs on CPU 1. The Redis timeout is
2 s so that no request is an error (check the answers printed on stderr: hits only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop
from rows import Workload

from memoserve_contract.settings import LogFormat, ModelFormat, ServingSettings
from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.sample_models import write_sample_models
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.http.app import create_app
from memoserve_serving.lifespan import running_dataplane
from memoserve_serving.runtimes.loader import load_model

DISTINCT = 64
REDIS_CPU = 1


class Target:
    """One app and what was measured of it."""

    def __init__(self, name: str, app: Any, bodies: list[bytes], concurrency: int) -> None:
        self.name, self.app, self.bodies = name, app, bodies
        self.concurrency = concurrency
        self.cpu_per_request: list[float] = []
        self.latencies: list[float] = []
        self.answers: dict[bytes, int] = {}
        self.writes = 0  # socket writes to Redis during the passes
        self._scope = {
            "type": "http",
            "method": "POST",
            "path": f"/v2/models/{app.state.settings.model_name}/infer",
            "headers": [(b"content-type", b"application/json")],
        }

    async def one(self, body: bytes) -> None:
        answers = self.answers

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                cache = dict(message["headers"]).get(b"x-memoserve-cache", b"-")
                answers[cache] = answers.get(cache, 0) + 1

        await self.app(self._scope, receive, send)

    async def run_pass(self, requests: int) -> None:
        latencies = self.latencies
        bodies = self.bodies
        clock = time.perf_counter

        async def worker(offset: int) -> None:
            for index in range(offset, offset + requests // self.concurrency):
                started = clock()
                await self.one(bodies[index % len(bodies)])
                latencies.append(clock() - started)

        writes = self._socket_writes()
        started = time.process_time()
        await asyncio.gather(*(worker(i) for i in range(self.concurrency)))
        self.cpu_per_request.append((time.process_time() - started) / requests * 1e6)
        self.writes += self._socket_writes() - writes

    def _socket_writes(self) -> int:
        """Writes so far on every Redis connection of the app's cache (Connection.writes)."""
        cache = self.app.state.dataplane._cache
        conns = [node.client._conn for node in cache.nodes.nodes]
        return sum(conn.writes for conn in conns if conn is not None)

    def report(self) -> tuple[float, float]:
        """(best µs CPU per request, p99 latency in µs)."""
        ordered = sorted(self.latencies)
        return min(self.cpu_per_request), ordered[int(len(ordered) * 0.99)] * 1e6


def pass_ratio(one: Target, cluster: Target) -> float:
    """The median over passes of one's CPU per hit / cluster's in the pass right after: the
    two ran seconds apart, so the machine's drift cancels out better than in best-of."""
    ratios = sorted(
        a / b for a, b in zip(one.cpu_per_request, cluster.cpu_per_request, strict=True)
    )
    return ratios[len(ratios) // 2]


def pin(server: RedisServer) -> None:
    assert server.process is not None
    os.sched_setaffinity(server.process.pid, {REDIS_CPU})


@contextlib.contextmanager
def redis_urls(workdir: Path, shards: int) -> Iterator[tuple[str, str]]:
    """(one primary's URL, a cluster's seed URL), every server pinned to CPU 1."""
    with (
        RedisServer(workdir / "one") as one,
        RedisCluster(workdir / "cluster", shards=shards, replicas=0) as cluster,
    ):
        for server in (one, *cluster.nodes):
            pin(server)
        yield one.url, cluster.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=32_000, help="per pass and target")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--shards", type=int, default=3, help="the cluster's primaries")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memoserve-cluster-hit-") as tmp:
        workdir = Path(tmp)
        write_sample_models(workdir)
        path = workdir / "iris.onnx"
        model = load_model(ModelFormat.ONNX, path)
        served = ServedModel("iris", None, hashlib.sha256(path.read_bytes()).hexdigest(), model)
        workload = Workload("float_input", "FP32", distinct=True)
        bodies = [workload.body(1, i) for i in range(DISTINCT)]
        with redis_urls(workdir, args.shards) as (one_url, cluster_url):
            targets = []
            cluster_name = f"cluster ({args.shards} primaries)"
            for name, url in (("one primary", one_url), (cluster_name, cluster_url)):
                settings = ServingSettings(
                    model_name="iris",
                    model_uri=str(path),
                    model_format=ModelFormat.ONNX,
                    redis_url=url,
                    log_format=LogFormat.TEXT,
                    cache_stats_seconds=0,
                    # Not 50 ms: on a busy machine a late reply would count as an error (a
                    # cheaper request), and the breaker would open, on one side more than the
                    # other.
                    redis_timeout_ms=2000,
                )
                app = create_app(settings, served=served)
                targets.append(Target(name, app, bodies, args.concurrency))

            async def run() -> None:
                async with contextlib.AsyncExitStack() as stack:
                    for target in targets:
                        await stack.enter_async_context(running_dataplane(target.app.state, served))
                        for body in bodies * 2:  # fill, then warm
                            await target.one(body)
                        target.latencies.clear()
                    for _ in range(args.passes):
                        for target in targets:
                            await target.run_pass(args.requests)

            uvloop.run(run())
    print(
        f"| cache | µs CPU per hit (best of {args.passes}) | hits per core per s | p99 µs "
        "| hits per Redis write |"
    )
    print("|---|---:|---:|---:|---:|")
    single_cpu = targets[0].report()[0]
    for target in targets:
        cpu, p99 = target.report()
        per_write = args.passes * args.requests / max(target.writes, 1)
        print(f"| {target.name} | {cpu:.1f} | {1e6 / cpu:,.0f} | {p99:.0f} | {per_write:.1f} |")
        print(target.name, {k.decode(): v for k, v in target.answers.items()}, file=sys.stderr)
    print(f"\ncluster hit throughput / one-primary hit throughput: "
          f"{single_cpu / targets[1].report()[0]:.3f} (best passes), "
          f"{pass_ratio(*targets):.3f} (median of side-by-side passes)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
