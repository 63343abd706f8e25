"""The cache front's forward, client side: CPU per forwarded request of each HTTP client, and of
the upstream that answers it, side by side in one run (docs/performance.md, "The front's forward").

A real upstream (``memoserve serve``, iris ONNX, cache off: the model tier) runs on CPU 1; this
process, pinned to CPU 0, sends it the request the front sends on a miss (the iris row, tensors
binary both ways as to an upstream listing ``binary_tensor_data``), from 32 concurrent tasks on
uvloop. Each client runs several passes, interleaved with the others (A B C A B C ...), and the
best pass counts: the client's CPU per request (this process's), and the upstream's (its process
tree's utime + stime per request).

    taskset -c 0 .venv/bin/python bench/serving/upstream_client.py [--requests 4000 --passes 5]

Rows: ``backend`` is what a miss costs the front besides its own hit path: the front's
``UpstreamBackend.run`` (request encoded, the exchange over ``upstream/http1.py``, the answer
decoded into tensors); the others are the bare exchange (same bytes) over each client; the last
is the floor of one more HTTP/1.1 exchange in Python: the lean client against the raw ASGI
ceiling (raw_asgi.py on stock uvicorn, a fixed answer), client CPU + server CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop
from load import CLK_TCK, tree_ticks
from models import write_models
from procs import Procs, wait_ready
from servers import VENV, clean_env, start_raw

from memoserve_dev.ports import free_port
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.protocol.metadata import ModelMetadata
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.upstream.backend import UpstreamBackend
from memoserve_serving.upstream.codec import encode_request
from memoserve_serving.upstream.http1 import Http1Pool

CONCURRENCY = 32
ENV = {"MEMOSERVE_LOG_LEVEL": "WARNING", "MEMOSERVE_CACHE_ENABLED": "false"}
ENV |= {"MEMOSERVE_GRPC_ENABLED": "false", "MEMOSERVE_DRAIN_SECONDS": "0"}
IRIS = (
    b'{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[%d.5,2.5,1.5,0.5]}]}'
)

Call = Callable[[int], Awaitable[None]]


async def clients(
    url: str, raw_url: str
) -> tuple[dict[str, tuple[Call, bool]], Callable[[], Awaitable[None]]]:
    """Each client's ``call(i)`` (one forwarded request), whether it calls the raw ASGI server,
    and one ``close`` for all."""
    path = "/v2/models/iris/infer"
    request = decode_request(IRIS % 1)
    body, json_length = encode_request(request, (), binary=True)
    headers = {"Content-Type": "application/json"}
    headers["Inference-Header-Content-Length"] = str(json_length)
    raw_headers = tuple((k.encode(), v.encode()) for k, v in headers.items())

    pool = Http1Pool(url, limit=64)
    raw_pool = Http1Pool(raw_url, limit=64)
    backend_pool = Http1Pool(url, limit=64)
    backend = UpstreamBackend(
        backend_pool, url, "iris", ModelMetadata((), (), ""), metrics=ServingMetrics("iris"),
        timeout=60, max_connections=64, max_queued=256, binary=True,
    )  # fmt: skip
    requests = [decode_request(IRIS % i) for i in range(64)]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    httpx_client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))

    async def lean(i: int) -> None:
        answer = await pool.request(b"POST", path.encode(), body, raw_headers, timeout=60)
        assert answer.status == 200, answer.body

    async def lean_to_raw(i: int) -> None:
        answer = await raw_pool.request(b"POST", path.encode(), body, raw_headers, timeout=60)
        assert answer.status == 200, answer.body

    async def through_backend(i: int) -> None:
        await backend.run(requests[i % 64], ())

    async def with_aiohttp(i: int) -> None:
        async with session.post(url + path, data=body, headers=headers) as answer:
            await answer.read()
            assert answer.status == 200

    async def with_httpx(i: int) -> None:
        answer = await httpx_client.post(url + path, content=body, headers=headers)
        assert answer.status_code == 200

    async def close() -> None:
        await pool.close()
        await raw_pool.close()
        await backend_pool.close()
        await session.close()
        await httpx_client.aclose()

    calls = {
        "front's UpstreamBackend.run (encode, http1.py, decode)": (through_backend, False),
        "http1.py": (lean, False),
        "aiohttp": (with_aiohttp, False),
        "httpx (h11)": (with_httpx, False),
        "http1.py, to the raw ASGI server (fixed answer)": (lean_to_raw, True),
    }
    return calls, close


async def one_pass(call: Call, requests: int, upstream_pid: int) -> tuple[float, float]:
    """(client CPU µs, upstream CPU µs) per request over one pass."""

    async def worker(count: int) -> None:
        for i in range(count):
            await call(i)

    ticks, cpu = tree_ticks([upstream_pid]), time.process_time()
    await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    client = (time.process_time() - cpu) / requests * 1e6
    upstream = (tree_ticks([upstream_pid]) - ticks) / CLK_TCK / requests * 1e6
    return client, upstream


async def run(
    url: str, pid: int, raw_url: str, raw_pid: int, requests: int, passes: int
) -> list[str]:
    calls, close = await clients(url, raw_url)
    best: dict[str, tuple[float, float]] = {}
    try:
        for call, to_raw in calls.values():  # warm: connections open, code paths run
            await one_pass(call, CONCURRENCY * 20, raw_pid if to_raw else pid)
        for _ in range(passes):
            for name, (call, to_raw) in calls.items():
                # httpx costs ~100x the others: fewer of its requests keep the run short
                count = requests // 10 if name.startswith("httpx") else requests
                measured = await one_pass(call, count, raw_pid if to_raw else pid)
                best[name] = min(best.get(name, measured), measured)
    finally:
        await close()
    rows = ["| client | client CPU µs/request | upstream CPU µs/request |", "|---|---:|---:|"]
    rows += [f"| {name} | {c:.1f} | {u:.1f} |" for name, (c, u) in best.items()]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="per pass")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memoserve-upstream-client-") as tmp:
        models = write_models(Path(tmp) / "models")
        with Procs(Path(tmp), None) as procs:
            port = free_port()
            argv = [str(VENV / "bin/memoserve"), "serve", "--model-name", "iris"]
            argv += ["--model-uri", str(models.iris_onnx), "--model-format", "onnx"]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            upstream = procs.start("upstream", 1, argv, env={**clean_env(), **ENV})
            problem = wait_ready(upstream, port, "/v2/health/ready", 120)
            if problem:
                raise RuntimeError(problem)
            raw_port = free_port()
            raw = start_raw(procs, 1, raw_port)
            problem = wait_ready(raw, raw_port, "/", 60)
            if problem:
                raise RuntimeError(problem)
            url, raw_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{raw_port}"
            measured = run(url, upstream.pid, raw_url, raw.pid, args.requests, args.passes)
            rows = uvloop.run(measured)
    print(f"CPU: {os.sched_getaffinity(0)} of {os.cpu_count()}; {CONCURRENCY} tasks")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
