"""A tiny numpy model for data-plane tests: it counts its executions.

It is a real implementation of the runtime interface (not a mock of a peer): the tests that
need to know how often the model ran, or to make it slow or failing on demand, use it; the
framework runtimes (ONNX, scikit-learn, XGBoost) are tested with real models elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.runtimes.base import Model, only_input


class AffineModel(Model):
    """``y = 2 * x + 1`` row-wise on a [N, 4] FP32 input ``x``; ``sum`` = row sums of y."""

    def __init__(self, *, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.metadata = ModelMetadata(
            inputs=(TensorSpec("x", "FP32", (-1, 4)),),
            outputs=(TensorSpec("y", "FP32", (-1, 4)), TensorSpec("sum", "FP32", (-1,))),
            platform="numpy_test",
        )
        self.delay = delay
        self.fail_on = fail_on  # a first element that makes the model raise
        self.calls = 0
        self.rows_seen: list[int] = []
        self._lock = threading.Lock()

    @property
    def batchable(self) -> bool:
        return True

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        with self._lock:
            self.calls += 1
            self.rows_seen.append(int(inputs["x"].shape[0]))
        if self.delay:
            time.sleep(self.delay)
        x = inputs["x"].astype(np.float32)
        if self.fail_on is not None and x.size and float(x.flat[0]) == self.fail_on:
            raise RuntimeError("the model refused this input")
        y = 2 * x + 1
        produced = {"y": y, "sum": y.sum(axis=1)}
        return {name: produced[name] for name in (outputs or produced)}


class DoubleBf16Model(Model):
    """``y = 2 * x`` on a BF16 input ``x`` of shape [N, M]: exact in BF16 (but for overflow). It
    counts its executions and records the dtype of each input it got."""

    def __init__(self) -> None:
        self.metadata = ModelMetadata(
            inputs=(TensorSpec("x", "BF16", (-1, -1)),),
            outputs=(TensorSpec("y", "BF16", (-1, -1)),),
            platform="numpy_test",
        )
        self.calls = 0
        self.dtypes: list[np.dtype[Any]] = []
        self._lock = threading.Lock()

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        x = only_input(inputs, "x")
        with self._lock:
            self.calls += 1
            self.dtypes.append(x.dtype)
        return {"y": x * 2}
