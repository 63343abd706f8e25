"""What a model takes and returns, as v2 model metadata describes it.

Protocol, not runtime: requests are validated against it (protocol.request), a cache front learns
it from its upstream, and every runtime describes itself with it (runtimes.base).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A model input or output as v2 metadata describes it; -1 marks a variable dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    platform: str  # v2 "platform", e.g. "onnxruntime_onnx", "sklearn", "xgboost"
