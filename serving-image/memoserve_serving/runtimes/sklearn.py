"""scikit-learn estimators (and pipelines) saved with joblib.

Unpickling runs code from the file: serve only models from a bucket you trust.

The input is FP64: scikit-learn computes in float64 for most estimators (trees cast to float32
themselves), so FP64 loses nothing and FP32 would save clients only a few bytes per value.

Thread safety: ``predict`` and ``predict_proba`` of a fitted estimator only read it, so calls from
several threads at once are safe; an estimator with ``n_jobs`` set starts its own workers per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from memoserve_serving.protocol.datatypes import datatype_of, dtype_of
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.runtimes.base import Model, only_input
from memoserve_serving.storage import ModelLoadError

INPUT = "input-0"


class SklearnModel(Model):
    def __init__(self, path: Path) -> None:
        try:
            estimator = joblib.load(path)
        except Exception as exc:  # unpickling raises anything the pickled classes raise
            raise ModelLoadError(f"cannot load scikit-learn model {path}: {exc!r}") from exc
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(f"cannot load {path}: {type(estimator).__name__} has no predict")
        self._estimator = estimator
        features = int(getattr(estimator, "n_features_in_", -1))

        classes = getattr(estimator, "classes_", None)  # only classifiers have classes_
        if classes is None:
            targets = int(getattr(estimator, "n_outputs_", 1))
            predict = TensorSpec("predict", "FP64", (-1,) if targets == 1 else (-1, targets))
        elif isinstance(classes, np.ndarray) and classes.ndim == 1:
            predict = TensorSpec("predict", datatype_of(classes.dtype), (-1,))
        else:
            raise ModelLoadError(f"cannot load {path}: multi-output classifiers are not supported")
        outputs = [predict]
        if classes is not None and callable(getattr(estimator, "predict_proba", None)):
            outputs.append(TensorSpec("predict_proba", "FP64", (-1, len(classes))))
        self.metadata = ModelMetadata(
            inputs=(TensorSpec(INPUT, "FP64", (-1, features)),),
            outputs=tuple(outputs),
            platform="sklearn",
        )
        self._predict_datatype = predict.datatype

    @property
    def batchable(self) -> bool:
        return True

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        features = only_input(inputs, INPUT)
        known = [spec.name for spec in self.metadata.outputs]
        wanted = list(outputs) or known
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise BadRequest(f"unknown outputs {unknown}")
        try:
            x = np.asarray(features, dtype=np.float64)
            if x.ndim != 2:
                raise ValueError(f"{INPUT} must be 2-D [rows, features], got shape {list(x.shape)}")
            # Only what was asked for: predict_proba can cost as much as predict.
            return {name: self._run(name, x) for name in wanted}
        except ValueError as exc:  # scikit-learn's input validation (feature count, NaN...)
            raise BadRequest(" ".join(str(exc).split())) from exc

    def _run(self, name: str, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if name == "predict_proba":
            return np.asarray(self._estimator.predict_proba(x), dtype=np.float64)
        result = np.asarray(self._estimator.predict(x))
        if self._predict_datatype == "BYTES":  # string class labels travel as UTF-8 bytes
            labels = [v.encode() if isinstance(v, str) else v for v in result.ravel()]
            return np.array(labels, dtype=object).reshape(result.shape)
        return result.astype(dtype_of(self._predict_datatype), copy=False)
