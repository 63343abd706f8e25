"""The scikit-learn runtime against the estimators' own predictions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from memoserve_contract.settings import ModelFormat
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import TensorSpec
from memoserve_serving.runtimes.base import Model
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.runtimes.sklearn import SklearnModel
from memoserve_serving.storage import ModelLoadError
from tests.serving.runtimes.conftest import Samples


def _saved(tmp_path: Path, estimator: Any) -> Model:
    joblib.dump(estimator, tmp_path / "model.joblib")
    return load_model(ModelFormat.SKLEARN, tmp_path / "model.joblib")


def test_classifier_metadata_comes_from_the_model(samples: Samples) -> None:
    model = load_model(ModelFormat.SKLEARN, samples.joblib)
    assert isinstance(model, SklearnModel)
    assert model.metadata.platform == "sklearn"
    assert model.metadata.inputs == (TensorSpec("input-0", "FP64", (-1, 4)),)
    assert model.metadata.outputs == (
        TensorSpec("predict", "INT64", (-1,)),
        TensorSpec("predict_proba", "FP64", (-1, 3)),
    )
    assert model.batchable


def test_predict_matches_the_estimator(samples: Samples) -> None:
    model = load_model(ModelFormat.SKLEARN, samples.joblib)
    estimator = joblib.load(samples.joblib)
    x = samples.x.astype(np.float64)
    result = model.predict({"input-0": x}, [])
    np.testing.assert_array_equal(result["predict"], estimator.predict(x))
    assert result["predict"].dtype == np.int64
    np.testing.assert_array_equal(result["predict_proba"], estimator.predict_proba(x))
    assert result["predict_proba"].shape == (150, 3)


def test_only_the_requested_outputs_are_computed(samples: Samples) -> None:
    model = load_model(ModelFormat.SKLEARN, samples.joblib)
    assert list(model.predict({"input-0": samples.x[:5]}, ["predict_proba"])) == ["predict_proba"]
    assert list(model.predict({"input-0": samples.x[:5]}, ["predict"])) == ["predict"]
    with pytest.raises(BadRequest, match="unknown outputs"):
        model.predict({"input-0": samples.x[:5]}, ["decision_function"])


def test_a_batch_answers_like_its_rows_one_by_one(samples: Samples) -> None:
    model = load_model(ModelFormat.SKLEARN, samples.joblib)
    batch = model.predict({"input-0": samples.x[:40]}, [])
    for i in range(40):
        row = model.predict({"input-0": samples.x[i : i + 1]}, [])
        assert row["predict"][0] == batch["predict"][i]
        np.testing.assert_allclose(row["predict_proba"][0], batch["predict_proba"][i], rtol=1e-12)


def test_predict_is_safe_from_many_threads(samples: Samples) -> None:
    model = load_model(ModelFormat.SKLEARN, samples.joblib)
    expected = model.predict({"input-0": samples.x}, [])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: model.predict({"input-0": samples.x}, []), range(32)))
    for result in results:
        np.testing.assert_array_equal(result["predict_proba"], expected["predict_proba"])


def test_string_labels_are_bytes(tmp_path: Path, samples: Samples) -> None:
    names = np.array(["setosa", "versicolor", "virginica"])[samples.y]
    estimator = LogisticRegression(max_iter=1000).fit(samples.x, names)
    model = _saved(tmp_path, estimator)
    assert model.metadata.outputs[0] == TensorSpec("predict", "BYTES", (-1,))
    result = model.predict({"input-0": samples.x}, ["predict"])["predict"]
    assert result.dtype == object
    assert result.tolist() == [name.encode() for name in estimator.predict(samples.x)]


def test_regressors_answer_fp64_and_have_no_probabilities(tmp_path: Path, samples: Samples) -> None:
    x, y = samples.x[:, :3], samples.x[:, 3]
    pipeline = make_pipeline(StandardScaler(), LinearRegression()).fit(x, y)
    model = _saved(tmp_path, pipeline)
    assert model.metadata.inputs == (TensorSpec("input-0", "FP64", (-1, 3)),)
    assert model.metadata.outputs == (TensorSpec("predict", "FP64", (-1,)),)
    result = model.predict({"input-0": x}, [])["predict"]
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, pipeline.predict(x.astype(np.float64)))


def test_bad_inputs_are_bad_requests(samples: Samples) -> None:
    model = load_model(ModelFormat.SKLEARN, samples.joblib)
    with pytest.raises(BadRequest, match="one input"):
        model.predict({"x": samples.x}, [])
    with pytest.raises(BadRequest, match="features"):
        model.predict({"input-0": samples.x[:, :3]}, [])
    with pytest.raises(BadRequest, match="2-D"):
        model.predict({"input-0": samples.x[0]}, [])


def test_a_corrupt_file_is_a_model_load_error(tmp_path: Path, samples: Samples) -> None:
    corrupt = tmp_path / "model.joblib"
    corrupt.write_bytes(samples.joblib.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="cannot load scikit-learn model") as caught:
        load_model(ModelFormat.SKLEARN, corrupt)
    assert "\n" not in str(caught.value)


def test_a_pickle_without_predict_is_refused(tmp_path: Path) -> None:
    joblib.dump({"not": "a model"}, tmp_path / "model.joblib")
    with pytest.raises(ModelLoadError, match="dict has no predict"):
        load_model(ModelFormat.SKLEARN, tmp_path / "model.joblib")
