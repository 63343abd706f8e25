"""validate_request: a request must fit the model's inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import validate_request
from memoserve_serving.protocol.types import InferenceRequest, RequestedOutput, Tensor
from memoserve_serving.runtimes.base import ModelMetadata, TensorSpec

METADATA = ModelMetadata(
    inputs=(TensorSpec("features", "FP32", (-1, 4)), TensorSpec("mask", "BOOL", (3,))),
    outputs=(TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 3))),
    platform="onnxruntime_onnx",
)


def tensor(name: str, datatype: str, shape: tuple[int, ...]) -> Tensor:
    dtype = object if datatype == "BYTES" else {"FP32": np.float32, "BOOL": bool}.get(datatype)
    return Tensor(name, datatype, shape, np.zeros(shape, dtype=dtype))


def request(*inputs: Tensor, outputs: tuple[str, ...] = ()) -> InferenceRequest:
    return InferenceRequest(None, inputs, tuple(RequestedOutput(name) for name in outputs))


GOOD_FEATURES = tensor("features", "FP32", (2, 4))
GOOD_MASK = tensor("mask", "BOOL", (3,))


@pytest.mark.parametrize("batch", [0, 1, 7])
def test_accepts_any_size_where_the_model_says_minus_one(batch: int) -> None:
    features = tensor("features", "FP32", (batch, 4))
    validate_request(request(GOOD_MASK, features, outputs=("label",)), METADATA)


def test_accepts_no_requested_outputs_and_any_input_order() -> None:
    validate_request(request(GOOD_MASK, GOOD_FEATURES), METADATA)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (request(GOOD_FEATURES, GOOD_MASK, tensor("extra", "FP32", (1,))), "unknown input 'extra'"),
        (request(GOOD_FEATURES), "missing input 'mask'"),
        (request(tensor("features", "FP64", (2, 4)), GOOD_MASK), "input 'features': datatype FP64"),
        (request(tensor("features", "FP32", (2, 5)), GOOD_MASK), "input 'features': shape [2, 5]"),
        (request(tensor("features", "FP32", (8,)), GOOD_MASK), "input 'features': shape [8]"),
        (request(GOOD_FEATURES, tensor("mask", "BOOL", (1, 3))), "input 'mask': shape [1, 3]"),
        (request(GOOD_FEATURES, GOOD_MASK, outputs=("label", "logits")), "unknown output 'logits'"),
    ],
)
def test_refuses_with_the_tensor_named(bad: InferenceRequest, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        validate_request(bad, METADATA)
    assert fragment in str(caught.value)
