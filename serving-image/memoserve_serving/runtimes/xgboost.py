"""XGBoost boosters saved with ``save_model`` (JSON, UBJSON, or the legacy binary format).

The output shape depends on the objective (binary and regression: [-1]; multi:softprob: [-1, k];
multi-target: [-1, t]), so it is read off one prediction made at load time rather than re-derived
from the objective's name.

Thread safety: ``inplace_predict`` is the one Booster method that XGBoost documents as safe and
lock-free to call from several threads at once; nothing else touches the booster after loading.

Device: ``cuda`` on a GPU pod with an XGBoost built with CUDA (the CUDA image's), else ``cpu``.
A pod has a GPU when the NVIDIA device plugin gave it one: it sets NVIDIA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.runtimes.base import Model, only_input
from memoserve_serving.storage import ModelLoadError

INPUT = "input-0"
OUTPUT = "predict"
# What the NVIDIA container runtime reads; these values mean "no GPU".
_NO_GPU = frozenset({"", "void", "none"})


def choose_device(build_info: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """``cuda`` when this XGBoost can use CUDA and the pod was given a GPU, else ``cpu``."""
    visible = environ.get("NVIDIA_VISIBLE_DEVICES", "").strip().lower()
    return "cuda" if build_info.get("USE_CUDA") and visible not in _NO_GPU else "cpu"


class XGBoostModel(Model):
    def __init__(self, path: Path, *, nthread: int = 1, device: str | None = None) -> None:
        if device is None:
            device = choose_device(xgboost.build_info(), os.environ)
        self.device = device
        try:
            self._booster = xgboost.Booster(model_file=str(path))
            # Like onnxruntime's intra-op threads: one core per call, concurrency comes from the
            # server's thread pool and batching.
            self._booster.set_param({"nthread": nthread, "device": device})
            self._features = int(self._booster.num_features())
            probe = self._booster.inplace_predict(np.zeros((1, self._features), np.float32))
        except xgboost.core.XGBoostError as exc:
            raise ModelLoadError(f"cannot load XGBoost model {path}: {exc}") from exc
        self.metadata = ModelMetadata(
            inputs=(TensorSpec(INPUT, "FP32", (-1, self._features)),),
            outputs=(TensorSpec(OUTPUT, "FP32", (-1, *np.shape(probe)[1:])),),
            platform="xgboost",
        )

    @property
    def batchable(self) -> bool:
        return True

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        features = only_input(inputs, INPUT)
        if set(outputs) - {OUTPUT}:
            raise BadRequest(f"unknown outputs {sorted(set(outputs) - {OUTPUT})}")
        try:
            x = np.ascontiguousarray(features, dtype=np.float32)
        except ValueError as exc:
            raise BadRequest(f"{INPUT}: {exc}") from exc
        if x.ndim != 2 or x.shape[1] != self._features:
            raise BadRequest(
                f"{INPUT} must have shape [rows, {self._features}], got {list(x.shape)}"
            )
        result = self._booster.inplace_predict(x)
        return {OUTPUT: np.asarray(result, dtype=np.float32)}
