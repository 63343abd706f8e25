"""CPU per call of memoserve's gRPC ModelInfer handler without grpc: called directly, in-process.

    taskset -c 0 .venv/bin/python bench/serving/grpc_inprocess.py [--typed] [--raw] [--l1-bytes N]

As inprocess.py is for HTTP: the handler is called with the wire bytes of the bench's request
(grpc_bench.py's iris FP64 [1, 4], typed contents; ``--raw``: the same tensor in
raw_input_contents, as tritonclient sends it) from 32 concurrent loops against a real
redis-server on CPU 1, and the best CPU time per call of several passes is printed. The server
context is a stand-in with the four calls the handler makes (no grpc here is the point).
``--typed`` measures the servicer's typed ModelInfer as it was (protobuf messages in and out
through grpcio's (de)serializers, called here by hand) for the before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from procs import Procs, Redis

from memoserve_contract.settings import LogFormat, ModelFormat, ServingSettings
from memoserve_dev.sample_models import write_sample_models
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.lifespan import running_dataplane
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.state import ServingState

CONCURRENCY = 32
WARM_UP = 100


class Context:
    """What the handler asks of grpc's ServicerContext on a hit."""

    def __init__(self) -> None:
        self.trailers: Any = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python/1.85"),)

    def time_remaining(self) -> float | None:
        return None

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailers = metadata

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def request_bytes(raw: bool) -> bytes:
    values = [5.1, 3.5, 1.4, 0.2]
    tensor = pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[1, 4])
    message = pb.ModelInferRequest(model_name="iris", inputs=[tensor])
    if raw:
        import struct

        message.raw_input_contents.append(struct.pack("<4d", *values))
    else:
        message.inputs[0].contents.fp64_contents.extend(values)
    return bytes(message.SerializeToString())


async def measure(call: Any, body: bytes, requests: int, passes: int) -> float:
    context = Context()

    async def worker(count: int) -> None:
        for _ in range(count):
            await call(body, context)

    await worker(WARM_UP)
    print("trailers:", context.trailers, file=sys.stderr)
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
        best = min(best, (time.process_time() - started) / requests * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--typed", action="store_true", help="the typed servicer (before)")
    parser.add_argument("--raw", action="store_true", help="raw_input_contents request")
    parser.add_argument("--l1-bytes", type=int, default=0)
    parser.add_argument("--requests", type=int, default=32_000)
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memoserve-grpc-inprocess-") as tmp:
        workdir = Path(tmp)
        with Procs(workdir, None) as procs:
            redis = Redis(procs, cpu=1)
            write_sample_models(workdir)
            path = workdir / "iris.joblib"
            settings = ServingSettings(
                model_name="iris",
                model_uri=str(path),
                model_format=ModelFormat.SKLEARN,
                redis_url=redis.url,
                log_format=LogFormat.TEXT,
                l1_max_bytes=args.l1_bytes,
            )
            model = load_model(ModelFormat.SKLEARN, path)
            served = ServedModel("iris", None, hashlib.sha256(path.read_bytes()).hexdigest(), model)
            state = ServingState(settings, ServingMetrics("iris"))
            call = handler(state, args.typed)

            async def run() -> float:
                async with running_dataplane(state, served):
                    return await measure(call, request_bytes(args.raw), args.requests, args.passes)

            micros = uvloop.run(run())
    what = "typed servicer" if args.typed else "raw-bytes handler"
    print(f"{what}: {micros:.2f} µs CPU per call (best of {args.passes})")
    return 0


def handler(state: ServingState, typed: bool) -> Any:
    if not typed:
        from memoserve_serving.grpc.infer import ModelInferHandler

        return ModelInferHandler(state).handle
    from memoserve_serving.grpc.servicer import InferenceServicer

    servicer = InferenceServicer(state)

    async def call(body: bytes, context: Any) -> bytes:
        request = pb.ModelInferRequest.FromString(body)
        response = await servicer.ModelInfer(request, context)
        return bytes(response.SerializeToString())

    return call


if __name__ == "__main__":
    sys.exit(main())
