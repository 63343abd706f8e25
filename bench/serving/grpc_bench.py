"""gRPC: a memoserve cache hit next to the grpc.aio ceiling (grpc_echo.py).

    .venv/bin/python bench/serving/grpc_bench.py [--measure 10] [--concurrency 32]

Each server runs pinned to CPU 0 (memoserve with its redis-server on CPU 1); the load is a
grpc.aio client on CPU 1 sending the same pre-serialized iris ModelInferRequest (typed FP32
contents) with ``--concurrency`` calls in flight. A Python client may not saturate the server,
so the figure compared is the server's own CPU per request (utime + stime of its process tree
over the measured window), and the ratio is the ceiling's CPU per request over memoserve's:
comparable with the HTTP rows' hit/raw throughput ratio when both servers are CPU-bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc  # type: ignore[import-untyped]  # no stubs
from load import tree_ticks
from procs import Procs, Redis, wait_ready
from servers import MEMOSERVE_ENV, VENV, clean_env

from memoserve_dev.ports import free_port
from memoserve_dev.sample_models import write_sample_models
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb

HERE = Path(__file__).resolve().parent
METHOD = "/inference.GRPCInferenceService/ModelInfer"
TICK = os.sysconf("SC_CLK_TCK")


def iris_request() -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="float_input", datatype="FP32", shape=[1, 4]
    )
    tensor.contents.fp32_contents.extend([5.1, 3.5, 1.4, 0.2])
    return bytes(pb.ModelInferRequest(model_name="iris", inputs=[tensor]).SerializeToString())


async def load(port: int, seconds: float, concurrency: int, pid: int) -> tuple[float, float]:
    """(requests per second, server CPU µs per request) over ``seconds`` of load."""
    body = iris_request()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)  # bytes in, bytes out: no client-side protobuf
        for _ in range(200):
            await call(body)  # warm-up (and the miss)
        done = 0
        stop = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                await call(body)
                done += 1

        ticks, started = tree_ticks([pid]), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, used = time.monotonic() - started, (tree_ticks([pid]) - ticks) / TICK
    return done / elapsed, used * 1e6 / done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})  # the client's core
    rows: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="memoserve-grpc-bench-") as tmp:
        workdir = Path(tmp)
        write_sample_models(workdir)
        with Procs(workdir, None) as procs:
            port = free_port()
            echo = procs.start(
                "grpc-echo", 0, [str(VENV / "bin/python"), str(HERE / "grpc_echo.py"), str(port)]
            )
            time.sleep(1.0)
            rows["echo"] = asyncio.run(load(port, args.measure, args.concurrency, echo.pid))
            procs.stop(echo)
            (workdir / "redis-data").mkdir()
            redis = Redis(procs, cpu=1)
            http_port, port = free_port(), free_port()
            argv = [str(VENV / "bin/memoserve"), "serve", "--model-name", "iris"]
            argv += ["--model-uri", str(workdir / "iris.onnx"), "--model-format", "onnx"]
            argv += ["--redis-url", redis.url, "--host", "127.0.0.1", "--port", str(http_port)]
            argv += ["--grpc-port", str(port)]
            memoserve = procs.start("memoserve", 0, argv, env={**clean_env(), **MEMOSERVE_ENV})
            problem = wait_ready(memoserve, http_port, "/v2/health/ready", 120)
            if problem:
                print(problem, file=sys.stderr)
                return 1
            rows["hit"] = asyncio.run(load(port, args.measure, args.concurrency, memoserve.pid))
    print("| row | requests/s | server CPU µs/request |")
    print("|---|---:|---:|")
    titles = {"echo": "grpc.aio ceiling (fixed reply)", "hit": "memoserve gRPC cache hit"}
    for key, (rps, micros) in rows.items():
        print(f"| {titles[key]} | {rps:,.0f} | {micros:.1f} |")
    print(f"\ngRPC hit/ceiling (CPU per request): {rows['echo'][1] / rows['hit'][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
