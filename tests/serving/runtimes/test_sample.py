"""The sample models: deterministic files, and an MLP of the requested shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memoserve_contract.settings import ModelFormat
from memoserve_dev.sample_models import write_mlp_onnx, write_sample_models
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.storage import fetch_model
from tests.serving.runtimes.conftest import Samples


def test_sample_models_are_byte_for_byte_reproducible(tmp_path: Path, samples: Samples) -> None:
    again = write_sample_models(tmp_path)
    assert [p.name for p in again] == ["iris.onnx", "iris.joblib", "iris-xgb.json"]
    for first, second in zip([samples.onnx, samples.joblib, samples.xgboost], again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name
        assert fetch_model(str(first), tmp_path).digest == fetch_model(str(second), tmp_path).digest


def test_the_three_iris_models_agree(samples: Samples) -> None:
    onnx = load_model(ModelFormat.ONNX, samples.onnx).predict({"float_input": samples.x}, [])
    sklearn = load_model(ModelFormat.SKLEARN, samples.joblib).predict({"input-0": samples.x}, [])
    xgb = load_model(ModelFormat.XGBOOST, samples.xgboost).predict({"input-0": samples.x}, [])
    np.testing.assert_array_equal(onnx["label"], sklearn["predict"])
    np.testing.assert_allclose(onnx["probabilities"], sklearn["predict_proba"], atol=1e-5)
    assert (xgb["predict"].argmax(axis=1) == onnx["label"]).mean() > 0.9


def test_mlp_shape_and_seed(tmp_path: Path) -> None:
    path = write_mlp_onnx(tmp_path / "deep" / "mlp.onnx", sizes=(8, 32, 32, 32, 5), seed=3)
    model = load_model(ModelFormat.ONNX, path)
    assert [(s.name, s.datatype, s.shape) for s in model.metadata.inputs] == [
        ("input", "FP32", (-1, 8))
    ]
    assert [(s.name, s.datatype, s.shape) for s in model.metadata.outputs] == [
        ("output", "FP32", (-1, 5))
    ]
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    assert model.predict({"input": x}, [])["output"].shape == (10, 5)
    same = write_mlp_onnx(tmp_path / "same.onnx", sizes=(8, 32, 32, 32, 5), seed=3)
    other = write_mlp_onnx(tmp_path / "other.onnx", sizes=(8, 32, 32, 32, 5), seed=4)
    assert same.read_bytes() == path.read_bytes() != other.read_bytes()


@pytest.mark.parametrize("sizes", [(4,), (4, 0, 3)])
def test_mlp_refuses_degenerate_sizes(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="sizes"):
        write_mlp_onnx(tmp_path / "mlp.onnx", sizes=sizes)
