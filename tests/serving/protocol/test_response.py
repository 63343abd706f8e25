"""encode_response: JSON shape of the answer, binary outputs on request, what JSON cannot carry."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from memoserve_serving.protocol.response import encode_response
from memoserve_serving.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    Tensor,
)

PROBABILITIES = Tensor("p", "FP32", (1, 3), np.array([[0.25, 0.5, 0.25]], dtype=np.float32))
LABELS = Tensor("label", "INT64", (2,), np.array([3, -1]))


def ask(*outputs: RequestedOutput, binary_outputs: bool = False) -> InferenceRequest:
    return InferenceRequest("r", (), outputs, {}, binary_outputs)


def split(body: bytes, json_length: int | None) -> tuple[dict[str, Any], bytes]:
    end = len(body) if json_length is None else json_length
    return orjson.loads(body[:end]), body[end:]


def test_all_json_response_is_exactly_this() -> None:
    response = InferenceResponse("iris", "3", "r", (PROBABILITIES, LABELS), {"cached": True})
    body, json_length = encode_response(response, ask())
    assert json_length is None
    assert orjson.loads(body) == {
        "model_name": "iris",
        "model_version": "3",
        "id": "r",
        "parameters": {"cached": True},
        "outputs": [
            {"name": "p", "datatype": "FP32", "shape": [1, 3], "data": [0.25, 0.5, 0.25]},
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [3, -1]},
        ],
    }


def test_absent_version_id_and_parameters_are_omitted() -> None:
    body, _ = encode_response(InferenceResponse("iris", None, None, (LABELS,)), ask())
    assert set(orjson.loads(body)) == {"model_name", "outputs"}


@pytest.mark.parametrize(
    ("request_", "binary_names"),
    [
        (ask(), []),
        (ask(binary_outputs=True), ["p", "label"]),
        (ask(RequestedOutput("label", binary=True)), ["label"]),
        (ask(RequestedOutput("p", binary=False), binary_outputs=True), ["label"]),
        (ask(RequestedOutput("p"), binary_outputs=True), ["p", "label"]),
    ],
)
def test_binary_outputs_follow_the_request(
    request_: InferenceRequest, binary_names: list[str]
) -> None:
    body, json_length = encode_response(
        InferenceResponse("m", None, None, (PROBABILITIES, LABELS)), request_
    )
    document, tail = split(body, json_length)
    assert (json_length is None) == (not binary_names)
    expected_tail = b""
    for output, tensor in zip(document["outputs"], (PROBABILITIES, LABELS), strict=True):
        if tensor.name in binary_names:
            raw = tensor.data.astype(tensor.data.dtype.newbyteorder("<")).tobytes()
            assert output["parameters"] == {"binary_data_size": len(raw)}
            assert "data" not in output
            expected_tail += raw
        else:
            assert "parameters" not in output
            assert output["data"] == tensor.data.ravel().tolist()
    assert tail == expected_tail


def test_bytes_outputs_json_as_strings_binary_framed() -> None:
    words = Tensor("w", "BYTES", (2,), np.array([b"caf\xc3\xa9", b""], dtype=object))
    body, _ = encode_response(InferenceResponse("m", None, None, (words,)), ask())
    assert orjson.loads(body)["outputs"][0]["data"] == ["café", ""]
    body, json_length = encode_response(
        InferenceResponse("m", None, None, (words,)), ask(binary_outputs=True)
    )
    _, tail = split(body, json_length)
    assert tail == struct.pack("<I", 5) + b"caf\xc3\xa9" + struct.pack("<I", 0)


def test_bytes_output_that_is_not_utf8_goes_binary_even_when_json_was_asked() -> None:
    raw = Tensor("raw", "BYTES", (1,), np.array([b"\xff"], dtype=object))
    body, json_length = encode_response(InferenceResponse("m", None, None, (LABELS, raw)), ask())
    document, tail = split(body, json_length)
    assert document["outputs"][0]["data"] == [3, -1]
    assert document["outputs"][1]["parameters"] == {"binary_data_size": 5}
    assert tail == b"\x01\x00\x00\x00\xff"


def test_outputs_are_cast_to_their_datatype_and_flattened() -> None:
    # A model may hand back float64 or a non-contiguous array for an FP32 output.
    data = np.arange(6, dtype=np.float64).reshape(2, 3).T
    body, json_length = encode_response(
        InferenceResponse("m", None, None, (Tensor("y", "FP32", (3, 2), data),)),
        ask(binary_outputs=True),
    )
    _, tail = split(body, json_length)
    assert np.frombuffer(tail, dtype="<f4").tolist() == data.ravel().tolist()
    body, _ = encode_response(
        InferenceResponse("m", None, None, (Tensor("y", "FP16", (3, 2), data),)), ask()
    )
    assert orjson.loads(body)["outputs"][0]["data"] == data.ravel().tolist()


def test_strings_from_the_model_and_scalars() -> None:
    labels = Tensor("s", "BYTES", (2,), np.array(["setosa", "virginica"]))
    scalar = Tensor("n", "FP64", (), np.float64(2.5) * np.ones(()))
    body, _ = encode_response(InferenceResponse("m", None, None, (labels, scalar)), ask())
    outputs = orjson.loads(body)["outputs"]
    assert outputs[0]["data"] == ["setosa", "virginica"]
    assert outputs[1] == {"name": "n", "datatype": "FP64", "shape": [], "data": [2.5]}


def test_nan_becomes_null_in_json_and_survives_binary() -> None:
    tensor = Tensor("f", "FP32", (2,), np.array([np.nan, 1.0], dtype=np.float32))
    body, _ = encode_response(InferenceResponse("m", None, None, (tensor,)), ask())
    assert orjson.loads(body)["outputs"][0]["data"] == [None, 1.0]
    body, json_length = encode_response(
        InferenceResponse("m", None, None, (tensor,)), ask(binary_outputs=True)
    )
    assert np.isnan(np.frombuffer(split(body, json_length)[1], dtype="<f4")[0])


def test_output_parameters_are_kept_beside_binary_data_size() -> None:
    tensor = Tensor("y", "INT8", (1,), np.array([1], dtype=np.int8), {"unit": "cm"})
    body, _ = encode_response(InferenceResponse("m", None, None, (tensor,)), ask())
    assert orjson.loads(body)["outputs"][0]["parameters"] == {"unit": "cm"}
    body, json_length = encode_response(
        InferenceResponse("m", None, None, (tensor,)), ask(binary_outputs=True)
    )
    assert split(body, json_length)[0]["outputs"][0]["parameters"] == {
        "unit": "cm",
        "binary_data_size": 1,
    }
