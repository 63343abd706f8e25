"""Fixtures for runtime and storage tests: the sample models (trained once), a GCS emulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memoserve_dev.sample_models import write_mlp_onnx, write_sample_models
from tests.support.gcs import BUCKET, GcsEmulator


@dataclass(frozen=True)
class Samples:
    onnx: Path
    joblib: Path
    xgboost: Path
    mlp: Path
    x: np.ndarray[Any, Any]  # the iris features, FP32 [150, 4]
    y: np.ndarray[Any, Any]  # the iris classes, 0..2


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    from sklearn.datasets import load_iris

    directory = tmp_path_factory.mktemp("samples")
    onnx_path, joblib_path, xgb_path = write_sample_models(directory)
    mlp = write_mlp_onnx(directory / "mlp" / "mlp.onnx", sizes=(4, 16, 16, 3))
    x, y = load_iris(return_X_y=True)
    return Samples(
        onnx=onnx_path, joblib=joblib_path, xgboost=xgb_path, mlp=mlp, x=x.astype(np.float32), y=y
    )


@pytest.fixture
def gcs_bucket(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator's empty ``models`` bucket; STORAGE_EMULATOR_HOST points at it for the test."""
    from google.cloud import storage

    gcs_emulator.wipe()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    return storage.Client(project="test").bucket(BUCKET)
