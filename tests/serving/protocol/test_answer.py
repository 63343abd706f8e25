"""The cached answer: pre-encoded JSON outputs beside the packed tensors."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from memoserve_serving.protocol.answer import Answer
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.response import encode_response
from memoserve_serving.protocol.types import InferenceResponse, Tensor

OUTPUTS = (
    Tensor("label", "INT64", (2,), np.array([0, 2], dtype=np.int64)),
    Tensor("probabilities", "FP32", (2, 3), np.arange(6, dtype=np.float32).reshape(2, 3) / 7),
)
REQUEST = b'{"id":"r1","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'
BINARY_REQUEST = (
    b'{"id":"r1","parameters":{"binary_data_output":true},'
    b'"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'
)


def test_round_trip_keeps_json_and_tensors() -> None:
    answer = Answer.unpack(Answer.of(OUTPUTS).pack())
    assert answer.outputs_json is not None
    assert [o["name"] for o in orjson.loads(answer.outputs_json)] == ["label", "probabilities"]
    for got, want in zip(answer.tensors(), OUTPUTS, strict=True):
        assert (got.name, got.datatype, got.shape) == (want.name, want.datatype, want.shape)
        np.testing.assert_array_equal(got.data, want.data)


@pytest.mark.parametrize(
    ("version", "request_id", "parameters"),
    [
        ("1", "r1", {}),
        (None, None, {}),
        (None, 'quote " backslash \\ é \u2028', {}),
        ('v"2', "r1", {"cached": True}),
    ],
)
def test_spliced_response_equals_the_fully_encoded_one(
    version: str | None, request_id: str | None, parameters: dict[str, object]
) -> None:
    request = decode_request(REQUEST)
    answer = Answer.of(OUTPUTS)
    full, _ = encode_response(
        InferenceResponse("iris", version, request_id, OUTPUTS, parameters), request
    )
    spliced, length = encode_response(
        InferenceResponse("iris", version, request_id, (), parameters, answer.outputs_json),
        request,
    )
    assert length is None
    assert spliced == full  # byte for byte: same keys, same order


def test_binary_requests_are_encoded_from_the_tensors() -> None:
    request = decode_request(BINARY_REQUEST)
    answer = Answer.of(OUTPUTS)
    response = InferenceResponse(
        "iris", None, "r1", answer.tensors(), outputs_json=answer.outputs_json
    )
    body, length = encode_response(response, request)
    assert length is not None  # the binary extension was used, not the JSON splice
    header = orjson.loads(body[:length])
    assert all("binary_data_size" in o["parameters"] for o in header["outputs"])


def test_outputs_that_cannot_be_json_have_no_fragment() -> None:
    raw = (Tensor("blob", "BYTES", (1,), np.array([b"\xff\xfe"], dtype=object)),)
    answer = Answer.unpack(Answer.of(raw).pack())
    assert answer.outputs_json is None
    assert answer.tensors()[0].data[0] == b"\xff\xfe"


@pytest.mark.parametrize(
    "value",
    [b"", b"MSA1", b"MSOB\x01\x00\x00\x00", b"MSA1\xff\x00\x00\x00[]", b"MSA1\x02\x00\x00\x00{}"],
)
def test_corrupt_values_are_value_errors(value: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any corrupt value is one ValueError
        Answer.unpack(value)
