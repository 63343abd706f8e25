"""gRPC: a memoserve cache hit next to the grpc.aio ceiling (grpc_echo.py) and MLServer's gRPC.

    bash bench/serving/run.sh --grpc [--measure 8] [--concurrency 32] [--rounds 3]

(``run.sh`` makes MLServer's virtualenv first; without it the MLServer row says why it was not
run.) Rows, in turn, each server pinned to CPU 0: the grpc.aio ceiling (a fixed pre-serialized
reply), memoserve ``serve --grpc-port`` answering from Redis (L1 off, redis-server on CPU 1) on
its native transport and on the grpc.aio fallback, and MLServer 1.7 + mlserver-sklearn on its
gRPC port. memoserve and MLServer serve the same iris scikit-learn joblib and all get the same
pre-serialized ModelInferRequest (``input-0`` FP64 [1, 4], typed contents), as in the HTTP
bench's hit-sklearn and mlserver rows.

The load is a grpc.aio client on CPU 1: one channel, ``--concurrency`` calls in flight (HTTP/2
streams), each call timed (p50 / p99). A Python client may not saturate the server, so beside
requests/s the table gives the server's own CPU per request (utime + stime of its process tree
over the measured window), and each ratio is given both ways, per round: rows of a round run
back to back, so a busy machine moves them together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc  # type: ignore[import-untyped]  # no stubs
from load import core_ticks, tree_ticks, wait_quiet
from procs import Proc, Procs, Redis, wait_port, wait_ready
from servers import (
    VENV,
    clean_env,
    mlserver_available,
    start_memoserve,
    start_mlserver,
)

from memoserve_dev.ports import free_port
from memoserve_dev.sample_models import write_sample_models
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb

HERE = Path(__file__).resolve().parent
METHOD = "/inference.GRPCInferenceService/ModelInfer"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = 0, 1
WARMUP_CALLS = 300
TIMES = "\N{MULTIPLICATION SIGN}"


def iris_request() -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[1, 4])
    tensor.contents.fp64_contents.extend([5.1, 3.5, 1.4, 0.2])
    return bytes(pb.ModelInferRequest(model_name="iris", inputs=[tensor]).SerializeToString())


@dataclass(frozen=True)
class Result:
    calls: int
    rps: float
    server_us: float  # server CPU per request
    p50_ms: float
    p99_ms: float
    other_cores: float  # CPU (in cores) of processes outside the bench over the window


async def check(port: int, expect_hit: bool) -> str:
    """Two calls like two grpcurls: what came back (and the cache trailer, for memoserve)."""
    seen = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        for _ in range(2):
            rpc = call(iris_request(), timeout=10)
            answer = pb.ModelInferResponse.FromString(await rpc)
            trailers = dict(await rpc.trailing_metadata() or ())
            seen.append(trailers.get("x-memoserve-cache", "-"))
    outputs = ",".join(o.name for o in answer.outputs)
    if expect_hit and seen != ["miss", "hit"]:
        raise RuntimeError(f"memoserve answered {seen}, not miss then hit")
    return f"outputs {outputs}; x-memoserve-cache {'→'.join(seen)}"


async def load(port: int, seconds: float, concurrency: int, pid: int) -> Result:
    body = iris_request()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)  # bytes in, bytes out: no client-side protobuf
        for _ in range(WARMUP_CALLS):
            await call(body)
        latencies: list[float] = []
        stop = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < stop:
                started = time.perf_counter()
                await call(body)
                latencies.append(time.perf_counter() - started)

        me = [os.getpid()]  # the servers are this process's children: all of the bench
        cores0, ours0, server0 = core_ticks(), tree_ticks(me), tree_ticks([pid])
        begun = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - begun
        cores1, ours1, server1 = core_ticks(), tree_ticks(me), tree_ticks([pid])
    used = sum(p1 - p0 for (_, p0, _), (_, p1, _) in zip(cores0, cores1, strict=True))
    cut = statistics.quantiles(latencies, n=100)
    return Result(
        calls=len(latencies),
        rps=len(latencies) / elapsed,
        server_us=(server1 - server0) / TICK * 1e6 / len(latencies),
        p50_ms=cut[49] * 1e3,
        p99_ms=cut[98] * 1e3,
        other_cores=max(0.0, (used - (ours1 - ours0)) / TICK / elapsed),
    )


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    start: Callable[[Procs, Path, Redis], tuple[Proc, int, int, str]]  # proc, rpc, http, ready
    expect_hit: bool = False


def start_echo(procs: Procs, workdir: Path, redis: Redis) -> tuple[Proc, int, int, str]:
    port = free_port()
    argv = [str(VENV / "bin/python"), str(HERE / "grpc_echo.py"), str(port)]
    return procs.start("grpc-echo", SERVER_CPU, argv, env=clean_env()), port, 0, ""


def start_hit(
    procs: Procs, workdir: Path, redis: Redis, transport: str = "native"
) -> tuple[Proc, int, int, str]:
    redis.cli("FLUSHALL")
    http_port, port = free_port(), free_port()
    proc = start_memoserve(
        procs,
        SERVER_CPU,
        http_port,
        label="memoserve-grpc",
        model_name="iris",
        model=workdir / "iris.joblib",
        model_format="sklearn",
        redis_url=redis.url,
        env={"MEMOSERVE_GRPC_PORT": str(port), "MEMOSERVE_GRPC_TRANSPORT": transport},
    )
    return proc, port, http_port, "/v2/health/ready"


def start_hit_aio(procs: Procs, workdir: Path, redis: Redis) -> tuple[Proc, int, int, str]:
    return start_hit(procs, workdir, redis, "aio")


def start_ml(procs: Procs, workdir: Path, redis: Redis) -> tuple[Proc, int, int, str]:
    http_port, port = free_port(), free_port()
    proc = start_mlserver(
        procs,
        SERVER_CPU,
        http_port,
        model_name="iris",
        model=workdir / "iris.joblib",
        workdir=workdir,
        grpc_port=port,
    )
    return proc, port, http_port, "/v2/models/iris/ready"


ROWS = (
    Row("echo", "grpc.aio ceiling (fixed pre-serialized reply)", start_echo),
    Row("hit", "memoserve gRPC cache hit, native transport (Redis, L1 off)", start_hit, True),
    Row("hit-aio", "memoserve gRPC cache hit, grpc.aio fallback", start_hit_aio, True),
    Row("mlserver", "MLServer 1.7 + mlserver-sklearn gRPC", start_ml),
)


def run_row(
    row: Row, procs: Procs, workdir: Path, redis: Redis, args: argparse.Namespace
) -> Result:
    proc, port, http_port, ready_path = row.start(procs, workdir, redis)
    try:
        if ready_path:
            problem = wait_ready(proc, http_port, ready_path, 120)
            if problem:
                raise RuntimeError(problem)
        else:
            wait_port(proc, port)
        print(f"  {row.key}: {asyncio.run(check(port, row.expect_hit))}", file=sys.stderr)
        wait_quiet(args.quiet_wait)
        return asyncio.run(load(port, args.measure, args.concurrency, proc.pid))
    finally:
        procs.stop(proc)


def median_round(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]


def report(rounds: list[dict[str, Result]], args: argparse.Namespace) -> str:
    keys = [row.key for row in ROWS if all(row.key in r for r in rounds)]
    lines = [
        f"{args.measure:g} s per row, {args.concurrency} calls in flight on one channel, "
        f"{len(rounds)} round(s); each row its median round by requests/s.",
        "",
        "| row | requests/s | p50 ms | p99 ms | server CPU µs/request | other processes (cores) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in ROWS:
        if row.key not in keys:
            continue
        r = median_round([one[row.key] for one in rounds])
        lines.append(
            f"| {row.title} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.server_us:.0f} | {r.other_cores:.2f} |"
        )
    ratios = [
        ("memoserve gRPC hit / MLServer gRPC", "hit", "mlserver"),
        ("memoserve gRPC hit on grpc.aio / MLServer gRPC", "hit-aio", "mlserver"),
        ("memoserve gRPC hit / grpc.aio ceiling", "hit", "echo"),
    ]
    lines += [
        "",
        "| ratio (same rounds) | by requests/s | by CPU/request | per round (req/s; CPU) |",
        "|---|---:|---:|---|",
    ]
    for title, a, b in ratios:
        if a not in keys or b not in keys:
            continue
        by_rps = [r[a].rps / r[b].rps for r in rounds]
        by_cpu = [r[b].server_us / r[a].server_us for r in rounds]
        each = ", ".join(f"{x:.2f}; {y:.2f}" for x, y in zip(by_rps, by_cpu, strict=True))
        rps, cpu = statistics.median(by_rps), statistics.median(by_cpu)
        lines.append(f"| {title} | {rps:.2f}{TIMES} | {cpu:.2f}{TIMES} | {each} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=20, help="s to wait for quiet")
    parser.add_argument("--pidfile", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    rows = [row for row in ROWS if row.key != "mlserver" or not mlserver_available()]
    if missing := mlserver_available():
        print(f"  mlserver: not run: {missing}", file=sys.stderr)
    rounds: list[dict[str, Result]] = []
    with tempfile.TemporaryDirectory(prefix="memoserve-grpc-bench-") as tmp:
        workdir = Path(tmp)
        write_sample_models(workdir)
        (workdir / "redis-data").mkdir()
        with Procs(workdir, args.pidfile) as procs:
            redis = Redis(procs, cpu=CLIENT_CPU)
            for number in range(1, args.rounds + 1):
                print(f"round {number}/{args.rounds}", file=sys.stderr)
                rounds.append({row.key: run_row(row, procs, workdir, redis, args) for row in rows})
    print(report(rounds, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
