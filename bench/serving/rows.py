"""The rows of the bench: which server, which model, which request, what the cache must say."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from models import LARGE_MLP, SMALL_MLP, BenchModels

IRIS_ROW = (5.1, 3.5, 1.4, 0.2)
BATCH_SIZE = 32
BATCH_WAIT_MS = 2
RAW_ONE_WRITE_HTTP = "memoserve_serving.http.http_protocol:HttpProtocol"


@dataclass(frozen=True)
class Workload:
    """The v2 request wrk sends: the same one every time, or a different one every time."""

    input_name: str
    datatype: str
    distinct: bool = False
    features: int = 4

    @property
    def script(self) -> str:
        return "distinct.lua" if self.distinct else "static.lua"

    def body(self, run_id: int = 0, counter: int = 0) -> bytes:
        """The static body, or (distinct) the body lua/distinct.lua sends for run/counter.
        Run id 0 is never used by wrk, so checks with it never collide with the load."""
        if self.distinct:
            data = [run_id + 0.5, counter + 0.25] + [0.5] * (self.features - 2)
        else:
            data = list(IRIS_ROW)
        values = ",".join(repr(v) for v in data)
        return (
            f'{{"inputs":[{{"name":"{self.input_name}","shape":[1,{self.features}],'
            f'"datatype":"{self.datatype}","data":[{values}]}}]}}'
        ).encode()


@dataclass(frozen=True)
class Row:
    key: str  # used by the ratios
    title: str
    server: Literal["raw", "memoserve", "mlserver"]
    workload: Workload
    model_name: str = "iris"
    model: Path | None = None
    model_format: str = ""
    env: dict[str, str] = field(default_factory=dict)
    # Raw rows: uvicorn's --http (memoserve's own protocol shows what one write per response
    # is worth to any app, apart from memoserve's data plane).
    http: str = "httptools"
    # X-Memoserve-Cache of every request under load: "hit" or "miss". The two check requests
    # before the load must answer miss then hit. None: not memoserve, only check for a 200.
    expect: Literal["hit", "miss"] | None = None


def all_rows(models: BenchModels) -> list[Row]:
    iris_fp32 = Workload("float_input", "FP32")
    iris_fp64 = Workload("input-0", "FP64")
    mlp = Workload("input", "FP32", distinct=True)
    no_batch = {"MEMOSERVE_BATCH_MAX_SIZE": "1"}
    batch = {
        "MEMOSERVE_BATCH_MAX_SIZE": str(BATCH_SIZE),
        "MEMOSERVE_BATCH_MAX_WAIT_MS": str(BATCH_WAIT_MS),
    }
    small = "-".join(map(str, SMALL_MLP))
    large = "-".join(map(str, LARGE_MLP))
    b = f"batch ≤{BATCH_SIZE}, wait {BATCH_WAIT_MS} ms"
    return [
        Row("raw", "raw ASGI ceiling (uvicorn, fixed JSON reply)", "raw", iris_fp32),
        Row(
            "raw-one-write",
            "raw ASGI app on memoserve's HTTP protocol (one write per response)",
            "raw",
            iris_fp32,
            http=RAW_ONE_WRITE_HTTP,
        ),
        Row(
            "hit-onnx",
            "memoserve hit, iris ONNX, Redis (L1 off)",
            "memoserve",
            iris_fp32,
            model=models.iris_onnx,
            model_format="onnx",
            expect="hit",
        ),
        Row(
            "hit-onnx-uvicorn",
            "memoserve hit, iris ONNX, Redis (L1 off), on uvicorn (MEMOSERVE_HTTP_TRANSPORT)",
            "memoserve",
            iris_fp32,
            model=models.iris_onnx,
            model_format="onnx",
            env={"MEMOSERVE_HTTP_TRANSPORT": "uvicorn"},
            expect="hit",
        ),
        Row(
            "hit-onnx-l1",
            "memoserve hit, iris ONNX, L1 on (64 MiB)",
            "memoserve",
            iris_fp32,
            model=models.iris_onnx,
            model_format="onnx",
            env={"MEMOSERVE_L1_MAX_BYTES": str(64 << 20)},
            expect="hit",
        ),
        Row(
            "hit-sklearn",
            "memoserve hit, iris sklearn joblib, Redis (L1 off)",
            "memoserve",
            iris_fp64,
            model=models.iris_joblib,
            model_format="sklearn",
            expect="hit",
        ),
        Row(
            "mlserver",
            "MLServer 1.7 + mlserver-sklearn, iris joblib",
            "mlserver",
            iris_fp64,
            model=models.iris_joblib,
        ),
        Row(
            "miss-small-b1",
            f"memoserve miss, MLP {small}, no batching",
            "memoserve",
            mlp,
            model_name="mlp",
            model=models.mlp_small,
            model_format="onnx",
            env=no_batch,
            expect="miss",
        ),
        Row(
            "miss-small-batch",
            f"memoserve miss, MLP {small}, {b}",
            "memoserve",
            mlp,
            model_name="mlp",
            model=models.mlp_small,
            model_format="onnx",
            env=batch,
            expect="miss",
        ),
        Row(
            "miss-large-b1",
            f"memoserve miss, MLP {large}, no batching",
            "memoserve",
            mlp,
            model_name="mlp",
            model=models.mlp_large,
            model_format="onnx",
            env=no_batch,
            expect="miss",
        ),
        Row(
            "miss-large-batch",
            f"memoserve miss, MLP {large}, {b}",
            "memoserve",
            mlp,
            model_name="mlp",
            model=models.mlp_large,
            model_format="onnx",
            env=batch,
            expect="miss",
        ),
    ]
