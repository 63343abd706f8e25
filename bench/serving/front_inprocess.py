"""What a miss costs through the cache front vs in the pod, without the client's HTTP: the apps
called in-process (as inprocess.py does), side by side in one run.

- ``pod``: today's coupled pod, iris ONNX, a miss (lookup, model, store) in this process;
- ``front``: a cache front (this process) whose upstream is ``memoserve serve`` (iris ONNX, cache
  off: the model tier, on granian) on CPU 1, a miss (lookup, forward, store): this process's CPU
  plus the upstream's (its process tree's utime + stime) per request. Its misses go upstream
  batched while calls are in flight (upstream_batch_max_size, the default);
- ``front, misses alone``: the same, every miss its own call (upstream_batch_max_size=1);
- ``front, misses alone, upstream on uvicorn``: the same, the model tier on uvicorn
  (MEMOSERVE_HTTP_TRANSPORT=uvicorn);
- ``model tier's own work``: the pod's app with the cache off (the model tier's data plane:
  request decoded and checked, model run, answer encoded), in this process: the upstream's CPU
  less this is its HTTP serving;
- ``floor``: one more HTTP/1.1 exchange and nothing else: the front's client (upstream/http1.py)
  sending the same forwarded request to the raw ASGI ceiling (raw_asgi.py on stock uvicorn, a
  fixed answer) on CPU 1, this process's CPU plus the server's. Whatever a forward through
  HTTP/1.1 to a Python server adds cannot be less;
- ``floor, granian``: the same with the raw server on granian (raw_rsgi.py): a native HTTP/1.1
  server behind the front.

Both serve the client's HTTP the same way, so the difference is what the front's forward adds.
Passes are interleaved (pod, front, front misses alone, ..., floor, pod, ...); the best pass
counts.

    taskset -c 0 .venv/bin/python bench/serving/front_inprocess.py [--requests 4000 --passes 5]

Run it pinned (taskset), redis-server and the upstream run on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvloop
from load import CLK_TCK, tree_ticks
from models import write_models
from procs import Procs, Redis, wait_ready
from rows import Workload
from servers import VENV, clean_env, start_raw, start_raw_granian

from memoserve_contract.settings import LogFormat, ModelFormat, ServingSettings
from memoserve_dev.ports import free_port
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.http.app import create_app
from memoserve_serving.lifespan import running_dataplane
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.upstream.codec import encode_request
from memoserve_serving.upstream.http1 import Http1Pool

CONCURRENCY = 32
UPSTREAM_ENV = {"MEMOSERVE_LOG_LEVEL": "WARNING", "MEMOSERVE_CACHE_ENABLED": "false"}
UPSTREAM_ENV |= {"MEMOSERVE_GRPC_ENABLED": "false", "MEMOSERVE_DRAIN_SECONDS": "0"}
IRIS = b'{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[1.5,2.5,1,0]}]}'


async def floor_pass(pool: Http1Pool, requests: int, pid: int) -> tuple[float, float]:
    """(this process's CPU µs, the raw server's CPU µs) per bare exchange."""
    body, json_length = encode_request(decode_request(IRIS), (), binary=True)
    headers = ((b"Content-Type", b"application/json"),)
    headers += ((b"Inference-Header-Content-Length", str(json_length).encode()),)

    async def worker(count: int) -> None:
        for _ in range(count):
            answer = await pool.request(
                b"POST", b"/v2/models/iris/infer", body, headers, timeout=60
            )
            assert answer.status == 200

    ticks, cpu = tree_ticks([pid]), time.process_time()
    await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    here = (time.process_time() - cpu) / requests * 1e6
    return here, (tree_ticks([pid]) - ticks) / CLK_TCK / requests * 1e6


async def one_pass(app: Any, bodies: Any, requests: int, pids: list[int]) -> tuple[float, float]:
    """(this process's CPU µs, the upstream's CPU µs) per request; every answer must be a miss."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v2/models/iris/infer",
        "headers": [(b"content-type", b"application/json")],
    }
    caches: dict[bytes, int] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            cache = dict(message["headers"]).get(b"x-memoserve-cache", b"-")
            caches[cache] = caches.get(cache, 0) + 1

    async def worker(count: int) -> None:
        for _ in range(count):
            body = next(bodies)

            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, receive, send)

    ticks, cpu = tree_ticks(pids), time.process_time()
    await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    here = (time.process_time() - cpu) / requests * 1e6
    there = (tree_ticks(pids) - ticks) / CLK_TCK / requests * 1e6 if pids else 0.0
    if set(caches) - {b"miss", b"off"}:
        raise RuntimeError(f"not all misses: {caches}")
    return here, there


@contextlib.asynccontextmanager
async def serving(settings: ServingSettings, served: ServedModel | None) -> AsyncIterator[Any]:
    app = create_app(settings, served=served)
    async with running_dataplane(app.state, served):
        # A front: until the upstream has answered (the state has no event to wait on).
        while app.state.dataplane is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        yield app


async def run(
    pod: ServingSettings, served: ServedModel, fronts: dict[str, ServingSettings],
    upstream_pids: dict[str, int], raws: dict[str, tuple[str, int]], requests: int, passes: int,
) -> list[str]:  # fmt: skip
    distinct = Workload("float_input", "FP32", distinct=True)
    bodies = (distinct.body(1, i) for i in itertools.count(1))
    best: dict[str, tuple[float, float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        apps = {"pod": (await stack.enter_async_context(serving(pod, served)), [])}
        model_tier = pod.model_copy(update={"cache_enabled": False})
        apps["model tier's own work"] = (
            await stack.enter_async_context(serving(model_tier, served)),
            [],
        )
        for name, settings in fronts.items():
            app = await stack.enter_async_context(serving(settings, None))
            apps[name] = (app, [upstream_pids[name]])
        for app, pids in apps.values():  # warm up
            await one_pass(app, bodies, CONCURRENCY * 10, pids)
        pools = {}
        for name, (url, pid) in raws.items():
            pools[name] = (Http1Pool(url, limit=64), pid)
            stack.push_async_callback(pools[name][0].close)
            await floor_pass(pools[name][0], CONCURRENCY * 10, pid)
        for _ in range(passes):
            for name, (app, pids) in apps.items():
                measured = await one_pass(app, bodies, requests, pids)
                best[name] = min(best.get(name, measured), measured, key=sum)
            for name, (pool, pid) in pools.items():
                measured = await floor_pass(pool, requests, pid)
                best[name] = min(best.get(name, measured), measured, key=sum)
    pod_us = best["pod"][0]
    rows = [
        "| miss | this process µs/request | upstream µs/request | total | vs the pod's |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (here, there) in best.items():
        rows.append(
            f"| {name} | {here:.1f} | {there:.1f} | {here + there:.1f} | "
            f"{here + there - pod_us:+.1f} |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="per pass")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memoserve-front-inprocess-") as tmp:
        models = write_models(Path(tmp) / "models")
        with Procs(Path(tmp), None) as procs:
            redis = Redis(procs, cpu=1)
            upstreams: dict[str, tuple[int, int]] = {}  # transport: (port, pid)
            for transport in ("uvicorn", "granian"):
                port = free_port()
                argv = [str(VENV / "bin/memoserve"), "serve", "--model-name", "iris"]
                argv += ["--model-uri", str(models.iris_onnx), "--model-format", "onnx"]
                argv += ["--host", "127.0.0.1", "--port", str(port)]
                env = {**clean_env(), **UPSTREAM_ENV, "MEMOSERVE_HTTP_TRANSPORT": transport}
                upstream = procs.start(f"upstream-{transport}", 1, argv, env=env)
                problem = wait_ready(upstream, port, "/v2/health/ready", 120)
                if problem:
                    raise RuntimeError(problem)
                upstreams[transport] = (port, upstream.pid)
            common: dict[str, Any] = {
                "model_name": "iris", "redis_url": redis.url, "log_format": LogFormat.TEXT,
                "l1_max_bytes": 0, "grpc_enabled": False,
                "redis_timeout_ms": 1000,  # a loaded machine's timeouts would skip stores
            }  # fmt: skip
            pod = ServingSettings(
                model_uri=str(models.iris_onnx), model_format=ModelFormat.ONNX, **common
            )
            model = load_model(ModelFormat.ONNX, models.iris_onnx)
            digest = hashlib.sha256(models.iris_onnx.read_bytes()).hexdigest()
            served = ServedModel("iris", None, digest, model)
            front: dict[str, Any] = common | {
                "model_uri": "", "model_format": None, "model_identity": "bench",
            }  # fmt: skip
            uvicorn_at = f"http://127.0.0.1:{upstreams['uvicorn'][0]}"
            granian_at = f"http://127.0.0.1:{upstreams['granian'][0]}"
            alone = front | {"upstream_batch_max_size": 1}
            fronts = {
                "front": ServingSettings(**front, upstream_url=granian_at),
                "front, misses alone": ServingSettings(**alone, upstream_url=granian_at),
                "front, misses alone, upstream on uvicorn": ServingSettings(
                    **alone, upstream_url=uvicorn_at
                ),
            }
            upstream_pids = {
                "front": upstreams["granian"][1],
                "front, misses alone": upstreams["granian"][1],
                "front, misses alone, upstream on uvicorn": upstreams["uvicorn"][1],
            }
            raws: dict[str, tuple[str, int]] = {}
            for name, start in (("floor", start_raw), ("floor, granian", start_raw_granian)):
                raw_port = free_port()
                raw = start(procs, 1, raw_port)
                problem = wait_ready(raw, raw_port, "/", 60)
                if problem:
                    raise RuntimeError(problem)
                raws[name] = (f"http://127.0.0.1:{raw_port}", raw.pid)
            measured = run(pod, served, fronts, upstream_pids, raws, args.requests, args.passes)
            rows = uvloop.run(measured)
    print(f"CPU: {sorted(os.sched_getaffinity(0))} of {os.cpu_count()}; {CONCURRENCY} tasks")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
