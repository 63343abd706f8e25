"""What traces cost on the hit path: off, on but sampled out, and on with every trace exported.

Like inprocess.py (the app called directly, no HTTP, 32 concurrent loops on CPU 0, a real
redis-server on CPU 1), three apps serving the same cached iris request side by side, passes
alternating between them so the machine's drift hits all alike:

- off: no OTEL_* variables (the default): the server holds no tracer at all;
- sampled out: an OTLP endpoint and OTEL_TRACES_SAMPLER=parentbased_traceidratio with ratio 0,
  so every span is created but none recorded or exported;
- every trace: ratio 1, each request's spans batched and exported over OTLP/gRPC to a receiver
  in another process on CPU 1 (tests/support/otlp_receiver.py), the export's CPU counted: its
  thread is in this process, and each pass ends with a flush of what it buffered (the queue is
  made large enough that no span is dropped).

    taskset -c 0 .venv/bin/python bench/serving/tracing_cost.py [--passes 7] [--requests 16000]

Prints the best pass's CPU per hit (µs) for each and its ratio to "off".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop
from rows import Workload

from memoserve_contract.settings import LogFormat, ModelFormat, ServingSettings
from memoserve_dev.ports import free_port, wait_for_port
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.sample_models import write_sample_models
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.http.app import create_app
from memoserve_serving.lifespan import running_dataplane
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.tracing import open_tracing

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 32
OTHER_CPU = 1


def tracing(endpoint: str, ratio: float | None) -> Tracing | None:
    """The Tracing the OTEL_* variables would give (None: none set), made now."""
    names = (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_BSP_MAX_QUEUE_SIZE",
    )
    for name in names:
        os.environ.pop(name, None)
    if ratio is None:
        return open_tracing(os.environ)
    os.environ.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(ratio),
            "OTEL_BSP_MAX_QUEUE_SIZE": "1000000",
        }
    )
    made = open_tracing(os.environ)  # the SDK reads the sampler now
    for name in names:
        os.environ.pop(name, None)
    return made


@contextlib.contextmanager
def receiver(port: int) -> Iterator[None]:
    command = [sys.executable, "-m", "tests.support.otlp_receiver", str(port)]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        os.sched_setaffinity(process.pid, {OTHER_CPU})
        wait_for_port(port, timeout=30)
        yield
    finally:
        process.terminate()
        process.wait(10)


async def run_pass(app: Any, body: bytes, requests: int, *, hits: bool = True) -> float:
    """CPU µs per request of one pass (``hits``: every answer must be a hit)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v2/models/{app.state.settings.model_name}/infer",
        "headers": [(b"content-type", b"application/json")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if hits and message["type"] == "http.response.start":
            result = dict(message["headers"])[b"x-memoserve-cache"]
            assert result == b"hit", (result, message["status"])

    async def worker() -> None:
        for _ in range(requests // CONCURRENCY):
            await app(scope, receive, send)

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    if app.state.tracing is not None:
        app.state.tracing.flush()
    return (time.process_time() - started) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=16_000, help="per pass and target")
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args()
    targets = {
        "off": None,
        "sampled out (ratio 0)": 0.0,
        "1 in 100 (ratio 0.01)": 0.01,
        "every trace (ratio 1)": 1.0,
    }
    with tempfile.TemporaryDirectory(prefix="memoserve-tracing-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        with RedisServer(workdir / "redis") as redis, receiver(port):
            assert redis.process is not None
            os.sched_setaffinity(redis.process.pid, {OTHER_CPU})
            write_sample_models(workdir)
            path = workdir / "iris.onnx"
            body = Workload("float_input", "FP32").body()
            settings = ServingSettings(
                model_name="iris",
                model_uri=str(path),
                model_format=ModelFormat.ONNX,
                redis_url=redis.url,
                log_format=LogFormat.TEXT,
                batch_max_size=1,
                redis_timeout_ms=2000,  # a busy machine's delays are not errors: hits only
                cache_stats_seconds=0,
            )
            model = load_model(ModelFormat.ONNX, path)
            served = ServedModel("iris", None, hashlib.sha256(path.read_bytes()).hexdigest(), model)

            async def run() -> dict[str, list[float]]:
                apps = {}
                async with contextlib.AsyncExitStack() as stack:
                    for name, ratio in targets.items():
                        app = create_app(settings, served=served)
                        app.state.tracing = tracing(f"http://127.0.0.1:{port}", ratio)
                        await stack.enter_async_context(running_dataplane(app.state, served))
                        await run_pass(app, body, 320, hits=False)  # the first fills the cache
                        apps[name] = app
                    results: dict[str, list[float]] = {name: [] for name in apps}
                    for _ in range(args.passes):
                        for name, app in apps.items():
                            results[name].append(await run_pass(app, body, args.requests))
                    for app in apps.values():
                        if app.state.tracing is not None:
                            app.state.tracing.shutdown()
                    return results

            results = uvloop.run(run())
    off = min(results["off"])
    print(f"| tracing | µs CPU per hit (best of {args.passes}) | vs off |")
    print("|---|---:|---:|")
    for name, values in results.items():
        print(f"| {name} | {min(values):.1f} | {min(values) / off:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
