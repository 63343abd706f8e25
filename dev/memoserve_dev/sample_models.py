"""Sample models: iris in each served format (from the dataset scikit-learn ships), and an MLP.

Everything is deterministic (fixed seeds, one thread, fixed ONNX graph names), so the same
library versions write byte-identical files and hence the same model digests.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

ONNX_OPSET = 17  # old enough for any onnxruntime >= 1.14, new enough for every operator used here
ONNX_IR_VERSION = 8  # the IR version that goes with opset 17

# iris.joblib's inputs and outputs as an MLServer user declares them in model-settings.json
# (MLServer's metadata lists none unless told: then a cache front cannot batch its misses).
MLSERVER_IRIS_TENSORS = {
    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
    "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}],
}


def write_sample_models(out: Path) -> list[Path]:
    """Train on iris and write iris.onnx, iris.joblib and iris-xgb.json under ``out``.

    iris.onnx and iris.joblib are the same LogisticRegression; the ONNX one takes "float_input"
    FP32 [-1, 4] and answers "label" INT64 [-1] and "probabilities" FP32 [-1, 3].
    """
    import joblib
    import numpy as np
    import xgboost
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    out.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)  # what the ONNX model takes; the same values for all three
    classifier = LogisticRegression(max_iter=1000, random_state=0).fit(x, y)

    onnx_model = convert_sklearn(
        classifier,
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        # zipmap=False: probabilities as a [N, 3] tensor, not a sequence of maps.
        options={id(classifier): {"zipmap": False}},
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
    )
    onnx_model.graph.name = "iris"  # skl2onnx names the graph with a random UUID
    onnx_path = out / "iris.onnx"
    onnx_path.write_bytes(onnx_model.SerializeToString())

    joblib_path = out / "iris.joblib"
    joblib.dump(classifier, joblib_path)

    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3}
        | {"seed": 0, "nthread": 1},
        xgboost.DMatrix(x, label=y),
        num_boost_round=20,
    )
    xgb_path = out / "iris-xgb.json"
    booster.save_model(xgb_path)
    return [onnx_path, joblib_path, xgb_path]


def write_mlp_onnx(path: Path, sizes: Sequence[int] = (4, 256, 256, 3), seed: int = 0) -> Path:
    """A fully connected ReLU network (Gemm-Relu-...-Gemm) with random weights.

    Input "input" FP32 [N, sizes[0]], output "output" FP32 [N, sizes[-1]]; for measuring
    batching, where the answers do not matter but the cost per row does.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes needs at least two positive layer widths, got {list(sizes)}")
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    layers = list(pairwise(sizes))
    current = "input"
    for i, (fan_in, fan_out) in enumerate(layers):
        # He initialisation keeps activations of a deep ReLU stack from vanishing or exploding.
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        weights += [
            numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
            numpy_helper.from_array(np.zeros(fan_out, np.float32), f"b{i}"),
        ]
        last = i == len(layers) - 1
        gemm = "output" if last else f"gemm{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [gemm]))
        if not last:
            current = f"relu{i}"
            nodes.append(helper.make_node("Relu", [gemm], [current]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", sizes[-1]])],
        initializer=weights,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        ir_version=ONNX_IR_VERSION,
        producer_name="memoserve",
    )
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path
