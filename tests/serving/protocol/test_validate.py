"""validate_request: a request must fit the model's inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.protocol.request import validate_request
from memoserve_serving.protocol.types import InferenceRequest, RequestedOutput, Tensor

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


def fits(shape: tuple[int, ...], spec: tuple[int, ...]) -> bool:
    """The rule, spelled out: same rank, and every dimension equal unless the model says -1."""
    return len(shape) == len(spec) and all(w in (-1, g) for g, w in zip(shape, spec, strict=True))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([-1, 0, 1, 2, 3]), max_size=4), min_size=1, max_size=3),
    st.lists(st.lists(st.integers(0, 3), max_size=4), min_size=1, max_size=3),
)
def test_shape_check_follows_the_rule(
    spec_shapes: list[list[int]], shapes: list[list[int]]
) -> None:
    metadata = ModelMetadata(
        inputs=tuple(TensorSpec(f"in{i}", "FP32", tuple(s)) for i, s in enumerate(spec_shapes)),
        outputs=(TensorSpec("out", "FP32", (-1,)),),
        platform="test",
    )
    for spec in metadata.inputs:
        for shape in map(tuple, shapes):
            others = [
                tensor(s.name, "FP32", tuple(max(d, 0) for d in s.shape))
                for s in metadata.inputs
                if s is not spec
            ]
            given_request = request(tensor(spec.name, "FP32", shape), *others, outputs=("out",))
            if fits(shape, spec.shape):
                validate_request(given_request, metadata)
            else:
                with pytest.raises(BadRequest, match=f"input '{spec.name}': shape"):
                    validate_request(given_request, metadata)


def test_each_model_is_checked_against_its_own_metadata() -> None:
    other = ModelMetadata(
        inputs=(TensorSpec("features", "FP64", (2, -1, 3)),),
        outputs=(TensorSpec("y", "FP64", ()),),
        platform="test",
    )
    features = tensor("features", "FP64", (2, 9, 3))
    for _ in range(3):  # alternate: nothing learnt about one model applies to the other
        validate_request(request(features, outputs=("y",)), other)
        validate_request(request(GOOD_FEATURES, GOOD_MASK, outputs=("label",)), METADATA)
        with pytest.raises(BadRequest, match="datatype FP64"):
            validate_request(request(features, GOOD_MASK), METADATA)
        with pytest.raises(BadRequest, match="unknown output 'label'"):
            validate_request(request(features, outputs=("label",)), other)
        with pytest.raises(BadRequest, match=r"shape \[3, 9, 3\]"):
            validate_request(request(tensor("features", "FP64", (3, 9, 3))), other)
