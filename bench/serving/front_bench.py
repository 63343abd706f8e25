"""The cache front, side by side in one run (docs/front.md, docs/performance.md):

- front hit vs today's in-pod hit: server CPU per request (per core);
- a miss through the front vs a direct miss: CPU per miss of front + upstream vs the pod alone,
  the front's misses batched under load (the default) and each miss its own call
  (MEMOSERVE_UPSTREAM_BATCH_MAX_SIZE=1);
- the front with 2 workers vs 1: hits per second (on a 2-vCPU machine wrk shares the second
  core with the second worker, so the figure understates the scaling);
- memoserve front + MLServer vs MLServer alone on a 90 %-repeat workload: CPU per request and
  requests per second; MLServer as shipped (its metadata lists no tensors: the front sends each
  miss alone), and with iris's tensors declared in its model-settings.json (the front batches
  misses); the two servers on one core, and on a core each (MLServer then on wrk's core in its
  own row as well); the front's misses alone and its hits alone too, set beside the mix.

    .venv/bin/python bench/serving/front_bench.py [--measure 10]

Servers on CPU 0, wrk and redis-server on CPU 1, as in bench.py. Prints a markdown table and
writes it to bench/results/front-<timestamp>.md. Not part of the tests.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from load import CLK_TCK, LoadShape, WrkResult, measure, tree_ticks, wait_quiet, warm_up
from models import BenchModels, write_models
from procs import Proc, Procs, Redis, wait_ready
from report import environment
from servers import ROOT, VENV, clean_env, mlserver_available, start_mlserver

from memoserve_dev.ports import free_port
from memoserve_dev.sample_models import MLSERVER_IRIS_TENSORS

SERVER_CPU, LOAD_CPU = 0, 1
ENV = {
    "MEMOSERVE_LOG_LEVEL": "WARNING",
    "MEMOSERVE_DRAIN_SECONDS": "0",
    "MEMOSERVE_L1_MAX_BYTES": "0",
    "MEMOSERVE_GRPC_ENABLED": "false",
}
ONNX = {"BENCH_INPUT_NAME": "float_input", "BENCH_DATATYPE": "FP32", "BENCH_FEATURES": "4"}
SKLEARN = {"BENCH_INPUT_NAME": "input-0", "BENCH_DATATYPE": "FP64", "BENCH_FEATURES": "4"}
IRIS = (
    b'{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
)


@dataclass(frozen=True)
class Measured:
    wrk: WrkResult
    others_us: float  # CPU per request of the other servers in the path (the upstream)

    @property
    def us(self) -> float:
        return self.wrk.server_us_per_request


@dataclass
class Bench:
    procs: Procs
    redis: Redis
    shape: LoadShape
    workdir: Path
    runs: itertools.count[int]
    rows: list[str]
    http_transport: str = "granian"  # every memoserve process's (MEMOSERVE_HTTP_TRANSPORT)

    def memoserve(self, label: str, *args: str, cpus: str = "0", **env: str) -> tuple[Proc, int]:
        port = free_port()
        argv = [str(VENV / "bin/memoserve"), "serve", "--model-name", "iris"]
        argv += ["--host", "127.0.0.1", "--port", str(port), *args]
        env = {**clean_env(), **ENV, "MEMOSERVE_HTTP_TRANSPORT": self.http_transport, **env}
        proc = self.procs.start(label, cpus, argv, env=env)
        problem = wait_ready(proc, port, "/v2/health/ready", 120)
        if problem:
            raise RuntimeError(problem)
        return proc, port

    def load(
        self, title: str, port: int, script: str, env: dict[str, str], server: Proc, *path: Proc
    ) -> Measured:
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        env = {**env, "BENCH_RUN_ID": str(next(self.runs))}
        if script == "static.lua":
            body = self.workdir / "iris.json"
            body.write_bytes(IRIS)
            env["BENCH_BODY_FILE"] = str(body)
        wait_quiet(20)
        warm_up(url, script, env, self.shape)
        env["BENCH_RUN_ID"] = str(next(self.runs))
        others = [p.pid for p in path]
        before = tree_ticks(others)
        result = measure(
            url, script, env, self.shape, server_pid=server.pid,
            helper_pids=[*others, self.redis.proc.pid],
        )  # fmt: skip
        others_s = (tree_ticks(others) - before) / CLK_TCK
        measured = Measured(result, others_s * 1e6 / result.requests if result.requests else 0)
        errors = result.non2xx + result.socket_errors
        self.rows.append(
            f"| {title} | {result.rps:,.0f} | {measured.us:.1f} | "
            f"{measured.others_us:.1f} | {result.p99_us / 1000:.2f} | {errors} |"
        )
        if self.http_transport != "granian":  # the default
            self.rows[-1] = self.rows[-1].replace("| ", f"| [{self.http_transport}] ", 1)
        print(self.rows[-1], file=sys.stderr)
        return measured

    def stop(self, *procs: Proc) -> None:
        for proc in procs:
            self.procs.stop(proc)
        self.redis.cli("FLUSHALL")


def run(bench: Bench, models_dir: Path, args: argparse.Namespace) -> list[str]:
    models = write_models(models_dir)
    onnx = ("--model-uri", str(models.iris_onnx), "--model-format", "onnx")
    redis = ("--redis-url", bench.redis.url)

    ratios: list[str] = []
    if not args.only_mlserver:
        ratios += memoserve_rows(bench, onnx, redis)
    return ratios + mlserver_rows(bench, models, redis, args)


def memoserve_rows(bench: Bench, onnx: tuple[str, ...], redis: tuple[str, ...]) -> list[str]:
    pod, port = bench.memoserve("inpod", *onnx, *redis)
    inpod = bench.load("in-pod hit (today)", port, "static.lua", ONNX, pod)
    direct = bench.load("direct miss (in the pod)", port, "distinct.lua", ONNX, pod)
    bench.stop(pod)

    up, up_port = bench.memoserve("upstream", *onnx, MEMOSERVE_CACHE_ENABLED="false")
    upstream = ("--upstream-url", f"http://127.0.0.1:{up_port}", "--model-identity", "bench")
    front, port = bench.memoserve("front", *upstream, *redis)
    hit = bench.load("front hit", port, "static.lua", ONNX, front, up)
    miss = bench.load("miss through the front (+ upstream)", port, "distinct.lua", ONNX, front, up)
    bench.stop(front)
    front, port = bench.memoserve(
        "front-alone", *upstream, *redis, MEMOSERVE_UPSTREAM_BATCH_MAX_SIZE="1"
    )
    alone_miss = bench.load(
        "miss through the front, misses alone (+ upstream)", port, "distinct.lua", ONNX, front, up
    )
    bench.stop(front)
    front2, port = bench.memoserve("front-2w", *upstream, *redis, cpus="0,1", MEMOSERVE_WORKERS="2")
    two = bench.load(
        "front hit, 2 workers (CPUs 0-1; wrk on 1)", port, "static.lua", ONNX, front2, up
    )
    bench.stop(front2, up)

    ratios = [
        f"- front hit / in-pod hit, CPU per request: {inpod.us / hit.us:.2f}x",
        *(
            f"- a miss through the front{label}: {m.us + m.others_us:.0f} us of CPU (front "
            f"{m.us:.0f} + upstream {m.others_us:.0f}) vs {direct.us:.0f} us in the pod: "
            f"{m.us + m.others_us - direct.us:+.0f} us"
            for label, m in (("", miss), (", misses alone", alone_miss))
        ),
        f"- 2 workers / 1, hits per second: {two.wrk.rps / hit.wrk.rps:.2f}x",
    ]
    return ratios


def mlserver_rows(
    bench: Bench, models: BenchModels, redis: tuple[str, ...], args: argparse.Namespace
) -> list[str]:
    ratios: list[str] = []
    missing = "--no-mlserver" if args.no_mlserver else mlserver_available()
    if missing is not None:
        ratios.append(f"- MLServer rows not run: {missing}")
        return ratios
    variants = (("", None), (", tensors declared", MLSERVER_IRIS_TENSORS))
    # MLServer on the servers' core (the front and MLServer share it), or on wrk's (the front has
    # a core of its own, as a front pod has; MLServer shares wrk's in both of its rows).
    arrangements = {"one core": SERVER_CPU, "a core each": LOAD_CPU}
    for where in args.mlserver_cores.split(","):
        for index, (label, tensors) in enumerate(variants):
            ratios.append(mlserver_pair(bench, models, redis, label, tensors, where,
                                        arrangements[where], index))  # fmt: skip
    return ratios


def mlserver_pair(
    bench: Bench,
    models: BenchModels,
    redis: tuple[str, ...],
    label: str,
    tensors: dict[str, Any] | None,
    where: str,
    mls_cpu: int,
    index: int,
) -> str:
    """MLServer alone, then memoserve's front before it: its misses alone (every question new),
    its hits alone (100 hot questions, no new one), then the 90 %-repeat mix, whose cost is set
    beside 0.9 x a hit + 0.1 x a miss measured apart."""
    mls_port = free_port()
    mls = start_mlserver(
        bench.procs, mls_cpu, mls_port, model_name="iris", model=models.iris_joblib,
        workdir=bench.workdir / f"mlserver-{mls_cpu}-{index}", tensors=tensors,
    )  # fmt: skip
    problem = wait_ready(mls, mls_port, "/v2/models/iris/ready", 120)
    if problem:
        raise RuntimeError(problem)
    alone = bench.load(
        f"MLServer alone{label}, 90 % repeats ({where})", mls_port, "repeat90.lua", SKLEARN, mls
    )
    behind = ("--upstream-url", f"http://127.0.0.1:{mls_port}", "--model-identity", "bench")
    front, port = bench.memoserve("front-mls", *behind, *redis)
    misses = bench.load(
        f"memoserve front + MLServer{label}, misses only ({where})", port, "distinct.lua",
        SKLEARN, front, mls,
    )  # fmt: skip
    hot = bench.load(
        f"memoserve front + MLServer{label}, repeats only ({where})", port, "repeat90.lua",
        {**SKLEARN, "BENCH_NEW_EVERY": "0"}, front, mls,
    )  # fmt: skip
    fronted = bench.load(
        f"memoserve front + MLServer{label}, 90 % repeats ({where})", port, "repeat90.lua",
        SKLEARN, front, mls,
    )  # fmt: skip
    bench.stop(front, mls)
    apart = 0.9 * hot.us + 0.1 * misses.us
    return (
        f"- front + MLServer{label} / MLServer alone, 90 % repeats ({where}): "
        f"{fronted.wrk.rps / alone.wrk.rps:.1f}x by requests/s, "
        f"{alone.us / (fronted.us + fronted.others_us):.1f}x by CPU per request (front "
        f"{fronted.us:.0f} + MLServer {fronted.others_us:.0f} vs {alone.us:.0f} us; measured "
        f"apart the front's hit costs {hot.us:.0f} us and its miss {misses.us:.0f}, so "
        f"{apart:.0f} at 90 % repeats; MLServer's miss behind it {10 * fronted.others_us:.0f} "
        f"us, {misses.others_us:.0f} with misses only)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="the cache front, side by side")
    parser.add_argument("--measure", type=int, default=10, help="seconds per measured run")
    parser.add_argument(
        "--http-transports",
        default="granian",
        help="comma-separated MEMOSERVE_HTTP_TRANSPORT values: every row runs on each, in turn",
    )
    parser.add_argument("--no-mlserver", action="store_true", help="skip the MLServer rows")
    parser.add_argument(
        "--only-mlserver", action="store_true", help="only the MLServer rows (and their ratios)"
    )
    parser.add_argument(
        "--mlserver-cores",
        default="one core,a core each",
        help="comma-separated: 'one core' (MLServer on the front's core) and/or 'a core each' "
        "(MLServer on wrk's core, in its own row too)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for every memoserve process (e.g. "
        "MEMOSERVE_UPSTREAM_BATCH_CONCURRENCY=1); repeat for more",
    )
    args = parser.parse_args()
    ENV.update(dict(item.split("=", 1) for item in args.env))
    shape = LoadShape(measure_s=args.measure, cpu=LOAD_CPU)
    with (
        tempfile.TemporaryDirectory(prefix="memoserve-front-bench-") as tmp,
        Procs(Path(tmp), None) as procs,
    ):
        workdir = Path(tmp)
        env = environment("memoserve dev sample-model (iris)")
        bench = Bench(procs, Redis(procs, LOAD_CPU), shape, workdir, itertools.count(1), [])
        ratios = []
        for transport in args.http_transports.split(","):
            bench.http_transport = transport
            ratios += [f"{line} [{transport}]" for line in run(bench, workdir / "models", args)]
    head = [
        "| row | req/s | server CPU us/req | upstream CPU us/req | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    text = "\n".join([*env, "", *head, *bench.rows, "", *ratios]) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / f"front-{datetime.now():%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
