"""ONNX models on onnxruntime: CUDA when this onnxruntime build has it, else CPU.

Thread safety: ``InferenceSession.run`` may be called from several threads at once on one
session (onnxruntime guarantees it), and ``predict`` keeps no other mutable state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.runtimes.base import Model
from memoserve_serving.storage import ModelLoadError

log = logging.getLogger(__name__)

# onnxruntime's type strings -> v2 datatypes. Not tensor(bfloat16): onnxruntime's Python API takes
# no ml_dtypes bfloat16 arrays (nor returns any), so a BF16 input is refused at load and a BF16
# output left out. The float8 types have no v2 name.
_DATATYPES = {
    "tensor(bool)": "BOOL",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


class OnnxModel(Model):
    def __init__(self, path: Path, *, intra_op_num_threads: int = 1) -> None:
        options = ort.SessionOptions()
        # One core per call by default: the server runs several predicts at once from its thread
        # pool and batches concurrent requests, so intra-op threads would only compete with those
        # for the pod's cores and make latency depend on load. Raise it for a big model that
        # serves one request at a time.
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime's errors share no base class but Exception
            raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc
        used = self._session.get_providers()
        log.info("loaded %s with %s", path, ", ".join(used))
        if providers[0] not in used:  # onnxruntime falls back to CPU when CUDA fails to start
            log.warning("%s: %s did not start; running on CPU", path, providers[0])

        inputs = []
        for arg in self._session.get_inputs():
            spec = _spec(arg)
            if spec is None:
                raise ModelLoadError(f"cannot load {path}: input {arg.name} has type {arg.type}")
            inputs.append(spec)
        outputs = []
        for arg in self._session.get_outputs():
            spec = _spec(arg)
            if spec is None:  # e.g. skl2onnx's ZipMap: a sequence of maps, not a tensor
                log.warning(
                    "%s: output %s (%s) is not a v2 tensor; left out", path, arg.name, arg.type
                )
                continue
            outputs.append(spec)
        if not outputs:
            raise ModelLoadError(f"cannot load {path}: the model has no tensor outputs")
        self.metadata = ModelMetadata(
            inputs=tuple(inputs), outputs=tuple(outputs), platform="onnxruntime_onnx"
        )
        self._input_names = frozenset(spec.name for spec in inputs)
        self._string_inputs = frozenset(s.name for s in inputs if s.datatype == "BYTES")
        self._output_names = [spec.name for spec in outputs]

    @property
    def batchable(self) -> bool:
        specs = self.metadata.inputs + self.metadata.outputs
        return all(spec.shape and spec.shape[0] == -1 for spec in specs)

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        if set(inputs) != self._input_names:
            missing = sorted(self._input_names - set(inputs))
            unknown = sorted(set(inputs) - self._input_names)
            raise BadRequest(f"inputs: missing {missing}, unknown {unknown}")
        unknown_outputs = sorted(set(outputs) - set(self._output_names))
        if unknown_outputs:
            raise BadRequest(f"unknown outputs {unknown_outputs}")
        feed = {
            name: _decode(value) if name in self._string_inputs else value
            for name, value in inputs.items()
        }
        names = list(outputs) or self._output_names
        try:
            results = self._session.run(names, feed)
        except InvalidArgument as exc:  # wrong shape or datatype for the graph
            raise BadRequest(" ".join(str(exc).split())) from exc
        return {
            name: _encode(np.asarray(result)) for name, result in zip(names, results, strict=True)
        }


def _spec(arg: Any) -> TensorSpec | None:
    datatype = _DATATYPES.get(arg.type)
    if datatype is None:
        return None
    # Symbolic ("N", "batch_size") and unknown (None) dimensions are variable.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape or ())
    return TensorSpec(name=arg.name, datatype=datatype, shape=shape)


def _decode(value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # v2 BYTES travel as bytes; onnxruntime would str() them ("b'x'"), it wants str.
    flat = [v.decode() if isinstance(v, bytes) else v for v in value.ravel()]
    return np.array(flat, dtype=object).reshape(value.shape)


def _encode(value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if value.dtype.kind not in "OU":
        return value
    flat = [v.encode() if isinstance(v, str) else v for v in value.ravel()]
    return np.array(flat, dtype=object).reshape(value.shape)
