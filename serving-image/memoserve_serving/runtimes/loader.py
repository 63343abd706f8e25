"""Files on disk -> a loaded :class:`~.base.Model` of the right runtime.

Each runtime module imports its framework at its top, so this module imports only the runtime the
format needs, when it is needed: the CLI and the other formats never pay for it.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from memoserve_contract.settings import ModelFormat
from memoserve_serving.runtimes.base import Model
from memoserve_serving.storage import ModelLoadError

# Where a directory holds the model: the first tier with a match wins, and it must match once.
_PATTERNS: dict[ModelFormat, tuple[tuple[str, ...], ...]] = {
    ModelFormat.ONNX: (("*.onnx",),),
    ModelFormat.SKLEARN: (("model.joblib",), ("*.joblib", "*.pkl", "*.pickle")),
    ModelFormat.XGBOOST: (
        ("model.json", "model.ubj", "model.bst"),
        ("*.json", "*.ubj", "*.bst", "*.model"),
    ),
}


def load_model(model_format: ModelFormat, path: Path, *, threads: int = 1) -> Model:
    """Load the model at ``path`` (a file, or a directory holding one). Blocking.

    ``threads`` is the framework's per-call parallelism (onnxruntime intra-op threads, xgboost
    nthread); scikit-learn estimators keep their own ``n_jobs``.
    """
    file = find_model_file(model_format, path) if path.is_dir() else path
    if not file.is_file():
        raise ModelLoadError(f"cannot load {path}: no such file or directory")
    try:
        if model_format is ModelFormat.ONNX:
            from memoserve_serving.runtimes.onnx import OnnxModel

            return OnnxModel(file, intra_op_num_threads=threads)
        if model_format is ModelFormat.SKLEARN:
            from memoserve_serving.runtimes.sklearn import SklearnModel

            return SklearnModel(file)
        if model_format is ModelFormat.XGBOOST:
            from memoserve_serving.runtimes.xgboost import XGBoostModel

            return XGBoostModel(file, nthread=threads)
    except ImportError as exc:  # an image built without this framework
        raise ModelLoadError(f"cannot load {model_format} models: {exc}") from exc
    raise ModelLoadError(f"cannot load {path}: unknown model format {model_format!r}")


def find_model_file(model_format: ModelFormat, directory: Path) -> Path:
    """The one model file of ``model_format`` under ``directory`` (searched recursively)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    tiers = _PATTERNS[model_format]
    for patterns in tiers:
        matches = [f for f in files if any(fnmatch(f.name, pattern) for pattern in patterns)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = ", ".join(str(m.relative_to(directory)) for m in matches)
            raise ModelLoadError(
                f"cannot load {directory}: several {model_format} model files ({names}); "
                "point the model URI at one of them"
            )
    wanted = ", ".join(pattern for patterns in tiers for pattern in patterns)
    raise ModelLoadError(f"cannot load {directory}: no {model_format} model file ({wanted})")
