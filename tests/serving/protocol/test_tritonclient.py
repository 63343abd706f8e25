"""Conformance: we decode what tritonclient sends, and tritonclient reads what we answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tritonclient.http import InferInput, InferRequestedOutput, InferResult
from tritonclient.http._utils import _get_inference_request
from tritonclient.utils import InferenceServerException

from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.response import encode_response
from memoserve_serving.protocol.types import InferenceResponse, Tensor
from tests.serving.protocol.test_request import VALUES, expected_array


def triton_request(
    inputs: list[InferInput], outputs: list[InferRequestedOutput] | None = None, **params: Any
) -> tuple[bytes, int | None]:
    body, json_size = _get_inference_request(
        inputs=inputs,
        request_id="req-7",
        outputs=outputs,
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        custom_parameters=params or None,
    )
    return bytes(body), json_size


def triton_input(name: str, array: np.ndarray, datatype: str, binary: bool) -> InferInput:
    infer_input = InferInput(name, list(array.shape), datatype)
    infer_input.set_data_from_numpy(array, binary_data=binary)
    return infer_input


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_decodes_what_tritonclient_sends(datatype: str, binary: bool) -> None:
    array = expected_array(datatype, VALUES[datatype], (2, 2))
    if datatype == "BF16" and not binary:
        with pytest.raises(InferenceServerException, match="BF16 inputs must be sent as binary"):
            triton_input("t", array, datatype, binary)
        return
    other = np.arange(6, dtype=np.float32).reshape(3, 2)
    body, json_length = triton_request(
        [triton_input("t", array, datatype, binary), triton_input("o", other, "FP32", binary)],
        [InferRequestedOutput("y", binary_data=False), InferRequestedOutput("z")],
        answer_style="terse",
    )
    request = decode_request(body, json_length)
    assert request.id == "req-7"
    assert request.parameters == {"answer_style": "terse"}
    tensor, second = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("t", datatype, (2, 2))
    assert tensor.data.dtype == array.dtype
    assert tensor.data.tolist() == array.tolist()
    assert second.data.tolist() == other.tolist()
    assert [(o.name, o.binary) for o in request.outputs] == [("y", False), ("z", True)]


def test_no_requested_outputs_means_binary_outputs() -> None:
    array = np.ones((1, 4), dtype=np.float32)
    request = decode_request(*triton_request([triton_input("x", array, "FP32", True)]))
    assert request.outputs == ()
    assert request.binary_outputs is True


def test_non_utf8_bytes_travel_binary() -> None:
    array = np.array([b"\xff\x00\xfe", b""], dtype=object)
    request = decode_request(*triton_request([triton_input("x", array, "BYTES", True)]))
    assert request.inputs[0].data.tolist() == [b"\xff\x00\xfe", b""]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_tritonclient_reads_what_we_answer(datatype: str, binary: bool) -> None:
    array = expected_array(datatype, VALUES[datatype], (2, 2))
    infer_input = triton_input("x", np.zeros(1, dtype=np.float32), "FP32", False)
    request = decode_request(
        *triton_request([infer_input], [InferRequestedOutput("y", binary_data=binary)])
    )
    response = InferenceResponse("m", "1", request.id, (Tensor("y", datatype, (2, 2), array),))
    body, json_length = encode_response(response, request)
    assert (json_length is not None) is binary
    result = InferResult.from_response_body(body, header_length=json_length)
    got = result.as_numpy("y").reshape(2, 2)
    if datatype == "BYTES" and not binary:
        assert got.tolist() == [[s.decode() for s in row] for row in array.tolist()]
    else:
        assert got.tolist() == array.tolist()
        assert got.dtype == array.dtype
    assert result.get_response()["id"] == "req-7"
