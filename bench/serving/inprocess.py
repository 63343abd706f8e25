"""CPU per request of memoserve's own code, without HTTP: the app called directly, in-process.

The full bench (bench.py) measures what a client sees, but on this VM its rows move ±10 %
between runs, more than most single changes to the hot path are worth. This calls the ASGI app
with a fixed scope from 32 concurrent loops on one core, against a real redis-server, and
prints the CPU time per request (best of several passes): steady to ~0.2 µs, so an A/B of one
change is quick. The server's cost is about this plus uvicorn's ~28 µs (the raw ceiling).

    taskset -c 0 .venv/bin/python bench/serving/inprocess.py hit [--l1-bytes 67108864]
    taskset -c 0 .venv/bin/python bench/serving/inprocess.py miss --mlp 4,1024,1024,1024,10

Run it pinned (taskset), with nothing else busy; redis-server runs on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from procs import Procs, Redis
from rows import Workload

from memoserve_contract.settings import LogFormat, ModelFormat, ServingSettings
from memoserve_dev.sample_models import write_mlp_onnx, write_sample_models
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.http.app import create_app
from memoserve_serving.lifespan import running_dataplane
from memoserve_serving.runtimes.loader import load_model

CONCURRENCY = 32
WARM_UP = 100  # requests before measuring


async def measure(app: Any, bodies: Callable[[], bytes], requests: int, passes: int) -> float:
    """Best CPU µs per request over ``passes`` passes of ``requests`` requests."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v2/models/{app.state.settings.model_name}/infer",
        "headers": [(b"content-type", b"application/json")],
    }
    answers: dict[bytes, int] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            cache = dict(message["headers"]).get(b"x-memoserve-cache", b"-")
            answers[cache] = answers.get(cache, 0) + 1

    async def one() -> None:
        body = bodies()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, receive, send)

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await worker(WARM_UP)  # warm: the first miss fills the cache for the hit mode
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
        best = min(best, (time.process_time() - started) / requests * 1e6)
    print("answers:", {k.decode(): v for k, v in answers.items()}, file=sys.stderr)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["hit", "miss"])
    parser.add_argument("--mlp", default="4,256,256,3", help="miss: MLP layer sizes")
    parser.add_argument("--batch", type=int, default=32, help="miss: MEMOSERVE_BATCH_MAX_SIZE")
    parser.add_argument(
        "--l1-bytes", type=int, default=0, help="MEMOSERVE_L1_MAX_BYTES (default 0: L1 off)"
    )
    parser.add_argument("--requests", type=int, help="per pass (hit: 32000, miss: 8000)")
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args()
    requests = args.requests or (32_000 if args.mode == "hit" else 8_000)
    with tempfile.TemporaryDirectory(prefix="memoserve-inprocess-") as tmp:
        workdir = Path(tmp)
        with Procs(workdir, None) as procs:
            redis = Redis(procs, cpu=1)
            if args.mode == "hit":
                write_sample_models(workdir)
                path, name = workdir / "iris.onnx", "iris"
                iris = Workload("float_input", "FP32").body()  # the bench's hit request
                next_body: Callable[[], bytes] = lambda: iris  # noqa: E731
            else:
                sizes = tuple(int(size) for size in args.mlp.split(","))
                path, name = write_mlp_onnx(workdir / "mlp.onnx", sizes=sizes), "mlp"
                # The bench's distinct requests, made before measuring: none repeats.
                distinct = Workload("input", "FP32", distinct=True)
                total = WARM_UP + requests * args.passes
                next_body = iter([distinct.body(1, i) for i in range(1, total + 1)]).__next__
            settings = ServingSettings(
                model_name=name,
                model_uri=str(path),
                model_format=ModelFormat.ONNX,
                redis_url=redis.url,
                log_format=LogFormat.TEXT,
                batch_max_size=args.batch,
                l1_max_bytes=args.l1_bytes,
            )
            model = load_model(ModelFormat.ONNX, path)
            served = ServedModel(name, None, hashlib.sha256(path.read_bytes()).hexdigest(), model)
            app = create_app(settings, served=served)

            async def run() -> float:
                async with running_dataplane(app.state, served):
                    return await measure(app, next_body, requests, args.passes)

            micros = uvloop.run(run())
    print(f"{args.mode}: {micros:.2f} µs CPU per request (best of {args.passes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
