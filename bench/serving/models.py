"""The models the bench serves: memoserve's own sample models, written afresh each run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memoserve_dev.sample_models import write_mlp_onnx, write_sample_models

SMALL_MLP = (4, 256, 256, 3)
LARGE_MLP = (4, 1024, 1024, 1024, 10)


@dataclass(frozen=True)
class BenchModels:
    iris_onnx: Path  # input "float_input" FP32 [N, 4]
    iris_joblib: Path  # input "input-0" FP64 [N, 4]
    mlp_small: Path  # input "input" FP32 [N, 4]
    mlp_large: Path  # input "input" FP32 [N, 4]
    source: str = "memoserve dev sample-model (iris) and memoserve_dev.sample_models.write_mlp_onnx"


def write_models(out: Path) -> BenchModels:
    out.mkdir(parents=True, exist_ok=True)
    write_sample_models(out)
    models = BenchModels(
        iris_onnx=out / "iris.onnx",
        iris_joblib=out / "iris.joblib",
        mlp_small=write_mlp_onnx(out / "mlp-small.onnx", sizes=SMALL_MLP),
        mlp_large=write_mlp_onnx(out / "mlp-large.onnx", sizes=LARGE_MLP),
    )
    for path in (models.iris_onnx, models.iris_joblib):
        if not path.is_file():
            raise FileNotFoundError(f"memoserve dev sample-model wrote no {path.name}")
    return models
