"""The XGBoost runtime against the booster's own predictions."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xgboost

from memoserve_contract.settings import ModelFormat
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import TensorSpec
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.runtimes.xgboost import XGBoostModel, choose_device
from memoserve_serving.storage import ModelLoadError
from tests.serving.runtimes.conftest import Samples


def test_metadata_comes_from_the_model(samples: Samples) -> None:
    model = load_model(ModelFormat.XGBOOST, samples.xgboost)
    assert isinstance(model, XGBoostModel)
    assert model.metadata.platform == "xgboost"
    assert model.metadata.inputs == (TensorSpec("input-0", "FP32", (-1, 4)),)
    # multi:softprob answers one probability per class.
    assert model.metadata.outputs == (TensorSpec("predict", "FP32", (-1, 3)),)
    assert model.batchable


def test_predict_matches_the_booster(samples: Samples) -> None:
    model = load_model(ModelFormat.XGBOOST, samples.xgboost)
    booster = xgboost.Booster(model_file=str(samples.xgboost))
    result = model.predict({"input-0": samples.x}, [])
    assert list(result) == ["predict"]
    assert result["predict"].dtype == np.float32
    np.testing.assert_allclose(result["predict"], booster.predict(xgboost.DMatrix(samples.x)))
    assert model.predict({"input-0": samples.x}, ["predict"]).keys() == {"predict"}


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({"objective": "binary:logistic"}, (-1,)),
        ({"objective": "reg:squarederror"}, (-1,)),
        ({"objective": "multi:softmax", "num_class": 3}, (-1,)),
    ],
)
def test_the_output_shape_follows_the_objective(
    tmp_path: Path, samples: Samples, params: dict[str, object], shape: tuple[int, ...]
) -> None:
    labels = samples.y if "num_class" in params else (samples.y == 2).astype(float)
    booster = xgboost.train(params, xgboost.DMatrix(samples.x, label=labels), num_boost_round=3)
    booster.save_model(tmp_path / "model.ubj")
    model = load_model(ModelFormat.XGBOOST, tmp_path / "model.ubj")
    assert model.metadata.outputs == (TensorSpec("predict", "FP32", shape),)
    result = model.predict({"input-0": samples.x}, [])["predict"]
    assert result.shape == (150,)
    np.testing.assert_allclose(result, booster.predict(xgboost.DMatrix(samples.x)))


def test_a_batch_answers_like_its_rows_one_by_one(samples: Samples) -> None:
    model = load_model(ModelFormat.XGBOOST, samples.xgboost)
    batch = model.predict({"input-0": samples.x[:40]}, [])["predict"]
    rows = [model.predict({"input-0": samples.x[i : i + 1]}, [])["predict"][0] for i in range(40)]
    np.testing.assert_allclose(batch, np.stack(rows), rtol=1e-6)


def test_predict_is_safe_from_many_threads(samples: Samples) -> None:
    model = load_model(ModelFormat.XGBOOST, samples.xgboost)
    expected = model.predict({"input-0": samples.x}, [])["predict"]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: model.predict({"input-0": samples.x}, []), range(64)))
    for result in results:
        np.testing.assert_array_equal(result["predict"], expected)


def test_bad_inputs_are_bad_requests(samples: Samples) -> None:
    model = load_model(ModelFormat.XGBOOST, samples.xgboost)
    with pytest.raises(BadRequest, match="one input"):
        model.predict({"input": samples.x}, [])
    with pytest.raises(BadRequest, match=r"shape \[rows, 4\], got \[150, 3\]"):
        model.predict({"input-0": samples.x[:, :3]}, [])
    with pytest.raises(BadRequest, match="unknown outputs"):
        model.predict({"input-0": samples.x}, ["margin"])


def test_a_corrupt_file_is_a_model_load_error(tmp_path: Path, samples: Samples) -> None:
    corrupt = tmp_path / "model.json"
    corrupt.write_bytes(samples.xgboost.read_bytes()[:500])
    with pytest.raises(ModelLoadError, match="cannot load XGBoost model") as caught:
        load_model(ModelFormat.XGBOOST, corrupt)
    assert "\n" not in str(caught.value)
    assert "Stack trace" not in str(caught.value)


@pytest.mark.parametrize(
    ("use_cuda", "environ", "device"),
    [
        (True, {"NVIDIA_VISIBLE_DEVICES": "GPU-8f6c"}, "cuda"),
        (True, {"NVIDIA_VISIBLE_DEVICES": "all"}, "cuda"),
        (True, {"NVIDIA_VISIBLE_DEVICES": "void"}, "cpu"),
        (True, {"NVIDIA_VISIBLE_DEVICES": ""}, "cpu"),
        (True, {}, "cpu"),
        (False, {"NVIDIA_VISIBLE_DEVICES": "all"}, "cpu"),  # xgboost-cpu on a GPU node
    ],
)
def test_the_device_follows_the_build_and_the_pod(
    use_cuda: bool, environ: dict[str, str], device: str
) -> None:
    assert choose_device({"USE_CUDA": use_cuda}, environ) == device


def test_the_booster_is_given_the_device(samples: Samples) -> None:
    # No GPU here: what is checked is the parameter the booster runs with.
    model = load_model(ModelFormat.XGBOOST, samples.xgboost)
    assert isinstance(model, XGBoostModel)
    assert model.device == "cpu"  # this machine: xgboost-cpu, no NVIDIA_VISIBLE_DEVICES
    config = json.loads(model._booster.save_config())
    assert config["learner"]["generic_param"]["device"] == "cpu"
    explicit = XGBoostModel(samples.xgboost, device="cpu")
    assert explicit.device == "cpu"
