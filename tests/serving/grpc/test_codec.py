"""gRPC messages <-> InferenceRequest: one cache key whatever way the tensor travelled, and a
clean BadRequest (INVALID_ARGUMENT) for anything malformed, never a crash or a huge allocation."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc._infer_result import InferResult
from tritonclient.grpc._utils import _get_inference_request

from memoserve_serving.cache.keys import request_digest
from memoserve_serving.grpc.codec import decode_request, encode_response
from memoserve_serving.grpc.contents import FIELDS
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import MAX_RANK
from memoserve_serving.protocol.request import decode_request as decode_http
from memoserve_serving.protocol.types import InferenceResponse, Tensor
from tests.serving.protocol.test_request import VALUES, expected_array
from tests.serving.protocol.test_tritonclient import triton_input, triton_request

Tensor_ = pb.ModelInferRequest.InferInputTensor


def typed(name: str, datatype: str, array: np.ndarray, **params: Any) -> Tensor_:
    tensor = Tensor_(name=name, datatype=datatype, shape=list(array.shape))
    values = array.ravel().tolist()
    if datatype == "BYTES":
        values = [v.encode() if isinstance(v, str) else v for v in values]
    getattr(tensor.contents, FIELDS[datatype]).extend(values)
    for key, value in params.items():
        tensor.parameters[key].int64_param = value
    return tensor


def grpc_triton_request(arrays: dict[str, tuple[np.ndarray, str]], **params: Any) -> bytes:
    """What tritonclient.grpc sends (raw_input_contents), serialized."""
    inputs = []
    for name, (array, datatype) in arrays.items():
        tensor = InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    request = _get_inference_request(
        model_name="m",
        inputs=inputs,
        model_version="",
        request_id="req-7",
        outputs=[InferRequestedOutput("y")],
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=3,
        timeout=None,
        parameters=params or None,
    )
    return bytes(request.SerializeToString())


@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_json_http_binary_grpc_typed_and_grpc_raw_make_one_key(datatype: str) -> None:
    array = expected_array(datatype, VALUES[datatype], (2, 2))
    other = np.arange(6, dtype=np.float32).reshape(3, 2)
    # tritonclient sends BF16 as binary data only (JSON BF16 is tested in tests/serving/protocol).
    binary_only = datatype == "BF16"
    http_json = decode_http(
        *triton_request(
            [
                triton_input("t", array, datatype, binary_only),
                triton_input("o", other, "FP32", False),
            ],
            [http_output("y")],
            style="terse",
        )
    )
    http_binary = decode_http(
        *triton_request(
            [triton_input("t", array, datatype, True), triton_input("o", other, "FP32", True)],
            [http_output("y")],
            style="terse",
        )
    )
    raw = pb.ModelInferRequest.FromString(
        grpc_triton_request({"o": (other, "FP32"), "t": (array, datatype)}, style="terse")
    )
    requests = [http_json, http_binary, decode_request(raw)[0]]
    assert decode_request(raw)[1] is True
    if datatype in FIELDS:  # FP16 and BF16 have no typed contents: they travel raw only
        message = pb.ModelInferRequest(
            model_name="m",
            inputs=[typed("t", datatype, array), typed("o", "FP32", other)],
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="y")],
        )
        message.parameters["style"].string_param = "terse"
        request, was_raw = decode_request(message)
        assert was_raw is False
        requests.append(request)
    assert len({request_digest(request) for request in requests}) == 1


def http_output(name: str) -> Any:
    """A JSON output as tritonclient.http asks for it."""
    from tritonclient.http import InferRequestedOutput as HttpOutput

    return HttpOutput(name, binary_data=False)


def test_parameters_are_the_values_json_would_carry() -> None:
    message = pb.ModelInferRequest(
        inputs=[typed("x", "FP32", np.zeros(1, np.float32))],
    )
    message.parameters["a"].bool_param = True
    message.parameters["b"].int64_param = -3
    message.parameters["c"].double_param = 1.5
    message.parameters["d"].uint64_param = 2**64 - 1
    message.parameters["priority"].uint64_param = 1  # a scheduling hint: not in the key
    message.parameters["binary_data_output"].bool_param = True  # HTTP transport only
    request, _ = decode_request(message)
    assert request.parameters == {"a": True, "b": -3, "c": 1.5, "d": 2**64 - 1}
    body = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [0]}],
        "parameters": {"a": True, "b": -3, "c": 1.5, "d": 2**64 - 1},
    }
    assert request_digest(request) == request_digest(decode_http(orjson.dumps(body)))


def test_tritonclient_grpc_reads_raw_answers() -> None:
    y = np.arange(8, dtype=np.float32).reshape(2, 4)
    labels = np.array([b"a", b"\xff"], dtype=object)
    response = InferenceResponse(
        "m",
        "1",
        "r",
        (Tensor("y", "FP32", (2, 4), y), Tensor("label", "BYTES", (2,), labels)),
    )
    message = encode_response(response, raw=True)
    result = InferResult(message)
    assert result.as_numpy("y").tolist() == y.tolist()
    assert result.as_numpy("label").tolist() == [b"a", b"\xff"]
    assert result.get_response().model_version == "1"


def test_typed_answers_fall_back_to_raw_for_fp16() -> None:
    half = Tensor("h", "FP16", (2,), np.array([1.5, 2], dtype=np.float16))
    message = encode_response(InferenceResponse("m", None, None, (half,)), raw=False)
    assert np.frombuffer(message.raw_output_contents[0], np.float16).tolist() == [1.5, 2.0]


def bad(message: pb.ModelInferRequest, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        decode_request(message)


def test_malformed_requests_name_the_tensor() -> None:
    x = np.zeros((1, 4), np.float32)
    bad(pb.ModelInferRequest(inputs=[Tensor_(name="", datatype="FP32")]), "#0")
    bad(pb.ModelInferRequest(inputs=[typed("x", "FP32", x), typed("x", "FP32", x)]), "twice")
    bad(pb.ModelInferRequest(inputs=[Tensor_(name="x", datatype="FP8", shape=[1])]), "'x'.*FP8")
    shape_bad = Tensor_(name="x", datatype="FP32", shape=[-1, 4])
    bad(pb.ModelInferRequest(inputs=[shape_bad]), "'x'.*negative")
    deep = Tensor_(name="x", datatype="FP32", shape=[2] * (MAX_RANK + 1))
    bad(pb.ModelInferRequest(inputs=[deep], raw_input_contents=[b""]), "'x'.*dimensions")
    wrong_field = Tensor_(name="x", datatype="FP32", shape=[1])
    wrong_field.contents.int_contents.append(1)
    bad(pb.ModelInferRequest(inputs=[wrong_field]), "'x'.*fp32_contents, not int_contents")
    half = Tensor_(name="x", datatype="FP16", shape=[1])
    half.contents.fp32_contents.append(1)
    bad(pb.ModelInferRequest(inputs=[half]), "'x'.*raw_input_contents")
    both = typed("x", "FP32", x)
    bad(pb.ModelInferRequest(inputs=[both], raw_input_contents=[x.tobytes()]), "'x'.*both")
    shared = typed("x", "FP32", x, shared_memory_region=1)
    bad(pb.ModelInferRequest(inputs=[shared]), "'x'.*shared memory")
    unframed = Tensor_(name="s", datatype="BYTES", shape=[2])
    bad(pb.ModelInferRequest(inputs=[unframed], raw_input_contents=[b"\x09\x00\x00\x00ab"]), "'s'")
    no_value = pb.ModelInferRequest(inputs=[typed("x", "FP32", x)])
    no_value.parameters["p"].CopyFrom(pb.InferParameter())
    bad(no_value, "parameter 'p' has no value")
    output = pb.ModelInferRequest.InferRequestedOutputTensor(name="y")
    bad(pb.ModelInferRequest(inputs=[typed("x", "FP32", x)], outputs=[output, output]), "twice")


@pytest.mark.parametrize("shape", [[2**40], [2**31, 2**31], [2**62, 0, 2**62], [1] * MAX_RANK])
def test_huge_declared_shapes_cost_nothing(shape: list[int]) -> None:
    for raw in (True, False):
        tensor = Tensor_(name="x", datatype="FP32", shape=shape)
        if raw:
            message = pb.ModelInferRequest(inputs=[tensor], raw_input_contents=[b"\x00" * 8])
        else:
            tensor.contents.fp32_contents.extend([0.0, 0.0])
            message = pb.ModelInferRequest(inputs=[tensor])
        bad(message, "'x'")


_parameter = st.one_of(
    st.builds(pb.InferParameter, bool_param=st.booleans()),
    st.builds(pb.InferParameter, int64_param=st.integers(-(2**63), 2**63 - 1)),
    st.builds(pb.InferParameter, string_param=st.text(max_size=8)),
    st.builds(pb.InferParameter, double_param=st.floats(allow_nan=False)),
    st.builds(pb.InferParameter),
)
_contents = st.builds(
    pb.InferTensorContents,
    bool_contents=st.lists(st.booleans(), max_size=6),
    int_contents=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6),
    uint64_contents=st.lists(st.integers(0, 2**64 - 1), max_size=3),
    fp32_contents=st.lists(st.floats(width=32), max_size=6),
    bytes_contents=st.lists(st.binary(max_size=4), max_size=3),
)
_tensor = st.builds(
    Tensor_,
    name=st.sampled_from(["x", "y", ""]),
    datatype=st.sampled_from([*sorted(FIELDS), "FP16", "BF16", ""]),
    shape=st.lists(st.integers(-2, 2**62), max_size=4),
    parameters=st.dictionaries(st.sampled_from(["a", "binary_data_size"]), _parameter, max_size=2),
    contents=_contents,
)


@settings(max_examples=300, deadline=None)
@given(
    inputs=st.lists(_tensor, max_size=3),
    raw=st.one_of(st.none(), st.lists(st.binary(max_size=24), max_size=3)),
    parameters=st.dictionaries(st.text(max_size=4), _parameter, max_size=2),
)
def test_any_message_decodes_or_is_a_bad_request(
    inputs: list[Tensor_], raw: list[bytes] | None, parameters: dict[str, pb.InferParameter]
) -> None:
    message = pb.ModelInferRequest(inputs=inputs, raw_input_contents=raw or [])
    for key, value in parameters.items():
        message.parameters[key].CopyFrom(value)
    try:
        request, _ = decode_request(message)
    except BadRequest:
        return
    for tensor in request.inputs:  # what was accepted is whole: its data fits its shape
        assert tensor.data.shape == tensor.shape
    request_digest(request)
