"""load_model on directories: finding the one model file of a format, or saying why not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memoserve_contract.settings import ModelFormat
from memoserve_serving.runtimes.loader import find_model_file, load_model
from memoserve_serving.storage import ModelLoadError
from tests.serving.runtimes.conftest import Samples


def _dir(tmp_path: Path, files: dict[str, Path | bytes]) -> Path:
    for name, content in files.items():
        target = tmp_path / "model" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_bytes(content)
    return tmp_path / "model"


def _sample(samples: Samples, model_format: ModelFormat) -> Path:
    return {
        ModelFormat.ONNX: samples.onnx,
        ModelFormat.SKLEARN: samples.joblib,
        ModelFormat.XGBOOST: samples.xgboost,
    }[model_format]


@pytest.mark.parametrize(
    ("model_format", "name"),
    [
        (ModelFormat.ONNX, "1/iris.onnx"),
        (ModelFormat.SKLEARN, "iris.pkl"),
        (ModelFormat.XGBOOST, "booster.json"),
    ],
)
def test_a_directory_with_one_model_file_loads_it(
    tmp_path: Path, samples: Samples, model_format: ModelFormat, name: str
) -> None:
    directory = _dir(tmp_path, {name: _sample(samples, model_format), "README.md": b"notes"})
    assert find_model_file(model_format, directory) == directory / name
    assert load_model(model_format, directory).metadata.inputs


@pytest.mark.parametrize(
    ("model_format", "names"),
    [
        (ModelFormat.ONNX, ["a.onnx", "b/b.onnx"]),
        (ModelFormat.SKLEARN, ["a.joblib", "b.joblib"]),
        (ModelFormat.XGBOOST, ["model.json", "model.ubj"]),
        (ModelFormat.XGBOOST, ["a.json", "b.bst"]),
    ],
)
def test_an_ambiguous_directory_is_refused(
    tmp_path: Path, samples: Samples, model_format: ModelFormat, names: list[str]
) -> None:
    directory = _dir(tmp_path, dict.fromkeys(names, _sample(samples, model_format)))
    with pytest.raises(ModelLoadError, match=r"several .* model files") as caught:
        load_model(model_format, directory)
    assert all(name in str(caught.value) for name in names)


def test_preferred_names_settle_what_would_be_ambiguous(tmp_path: Path, samples: Samples) -> None:
    directory = _dir(
        tmp_path,
        {"model.joblib": samples.joblib, "encoder.pkl": b"", "other.joblib": b""},
    )
    assert find_model_file(ModelFormat.SKLEARN, directory) == directory / "model.joblib"
    xgb = _dir(tmp_path / "x", {"model.json": samples.xgboost, "features.json": b"[]"})
    assert find_model_file(ModelFormat.XGBOOST, xgb) == xgb / "model.json"


@pytest.mark.parametrize("model_format", list(ModelFormat))
def test_a_directory_without_a_model_file_is_refused(
    tmp_path: Path, model_format: ModelFormat
) -> None:
    directory = _dir(tmp_path, {"notes.txt": b"", "weights.bin": b""})
    with pytest.raises(ModelLoadError, match=f"no {model_format} model file"):
        load_model(model_format, directory)


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(ModelFormat.ONNX, tmp_path / "gone.onnx")
