"""The ONNX runtime against onnxruntime itself, on the sample models."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from memoserve_contract.settings import ModelFormat
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import TensorSpec
from memoserve_serving.runtimes.loader import load_model
from memoserve_serving.runtimes.onnx import OnnxModel
from memoserve_serving.storage import ModelLoadError
from tests.serving.runtimes.conftest import Samples


def test_metadata_comes_from_the_model(samples: Samples) -> None:
    model = load_model(ModelFormat.ONNX, samples.onnx)
    assert isinstance(model, OnnxModel)
    assert model.metadata.platform == "onnxruntime_onnx"
    assert model.metadata.inputs == (TensorSpec("float_input", "FP32", (-1, 4)),)
    assert model.metadata.outputs == (
        TensorSpec("label", "INT64", (-1,)),
        TensorSpec("probabilities", "FP32", (-1, 3)),
    )
    assert model.batchable


def test_predict_matches_onnxruntime(samples: Samples) -> None:
    model = load_model(ModelFormat.ONNX, samples.onnx)
    reference = ort.InferenceSession(str(samples.onnx), providers=["CPUExecutionProvider"])
    label, probabilities = reference.run(None, {"float_input": samples.x})
    result = model.predict({"float_input": samples.x}, [])
    assert set(result) == {"label", "probabilities"}
    np.testing.assert_array_equal(result["label"], label)
    np.testing.assert_allclose(result["probabilities"], probabilities, rtol=1e-6)
    assert result["probabilities"].shape == (150, 3)
    assert result["probabilities"].dtype == np.float32


def test_only_the_requested_outputs_are_returned(samples: Samples) -> None:
    model = load_model(ModelFormat.ONNX, samples.onnx)
    result = model.predict({"float_input": samples.x[:2]}, ["probabilities"])
    assert list(result) == ["probabilities"]
    with pytest.raises(BadRequest, match="unknown outputs"):
        model.predict({"float_input": samples.x[:2]}, ["nope"])


def test_a_batch_answers_like_its_rows_one_by_one(samples: Samples) -> None:
    model = load_model(ModelFormat.ONNX, samples.mlp)
    assert model.metadata.inputs == (TensorSpec("input", "FP32", (-1, 4)),)
    assert model.metadata.outputs == (TensorSpec("output", "FP32", (-1, 3)),)
    batch = model.predict({"input": samples.x[:32]}, [])["output"]
    rows = [model.predict({"input": samples.x[i : i + 1]}, [])["output"][0] for i in range(32)]
    np.testing.assert_allclose(batch, np.stack(rows), rtol=1e-5, atol=1e-6)


def test_predict_is_safe_from_many_threads(samples: Samples) -> None:
    model = load_model(ModelFormat.ONNX, samples.mlp)
    expected = model.predict({"input": samples.x}, [])["output"]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: model.predict({"input": samples.x}, []), range(64)))
    for result in results:
        np.testing.assert_array_equal(result["output"], expected)


def test_bad_inputs_are_bad_requests(samples: Samples) -> None:
    model = load_model(ModelFormat.ONNX, samples.onnx)
    with pytest.raises(BadRequest, match="missing"):
        model.predict({}, [])
    with pytest.raises(BadRequest, match="unknown"):
        model.predict({"float_input": samples.x, "extra": samples.x}, [])
    with pytest.raises(BadRequest, match="INVALID_ARGUMENT"):
        model.predict({"float_input": samples.x[:, :3]}, [])
    with pytest.raises(BadRequest, match="INVALID_ARGUMENT"):
        model.predict({"float_input": samples.x.astype(np.float64)}, [])


def test_non_tensor_outputs_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    zipmap = convert_sklearn(
        LogisticRegression(max_iter=1000).fit(x, y),
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )  # ZipMap on: probabilities are a sequence of maps
    (tmp_path / "zipmap.onnx").write_bytes(zipmap.SerializeToString())
    model = load_model(ModelFormat.ONNX, tmp_path / "zipmap.onnx")
    assert [spec.name for spec in model.metadata.outputs] == ["output_label"]
    assert "output_probability" in caplog.text
    assert list(model.predict({"float_input": x[:3].astype(np.float32)}, [])) == ["output_label"]


def test_strings_travel_as_bytes_and_fixed_batch_dims_are_not_batchable(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, [2])],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    (tmp_path / "strings.onnx").write_bytes(onnx_model.SerializeToString())
    model = load_model(ModelFormat.ONNX, tmp_path / "strings.onnx")
    assert model.metadata.inputs == (TensorSpec("text", "BYTES", (2,)),)
    assert not model.batchable
    result = model.predict({"text": np.array([b"caf\xc3\xa9", b"x"], dtype=object)}, [])
    assert result["same"].tolist() == [b"caf\xc3\xa9", b"x"]


def test_a_corrupt_file_is_a_model_load_error(tmp_path: Path, samples: Samples) -> None:
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(samples.onnx.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"cannot load ONNX model .*model\.onnx") as caught:
        load_model(ModelFormat.ONNX, corrupt)
    assert "\n" not in str(caught.value)
