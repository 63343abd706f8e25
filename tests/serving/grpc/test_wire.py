"""The hand-written ModelInferResponse bytes (wire.py) parse as the message codec.py builds, for
every datatype, typed and raw, with and without parameters, id and version."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from memoserve_serving.grpc.codec import encode_response
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.wire import encode_response_bytes, varint
from memoserve_serving.protocol.blob import pack_outputs
from memoserve_serving.protocol.memo import Memo
from memoserve_serving.protocol.types import InferenceResponse, Tensor
from tests.serving.protocol.test_request import VALUES, expected_array


def same_parse(response: InferenceResponse, raw: bool) -> pb.ModelInferResponse:
    written = pb.ModelInferResponse.FromString(encode_response_bytes(response, raw))
    built = encode_response(response, raw)
    assert written == built, (written, built)
    # and byte for byte, where protobuf's own order is ours (no maps)
    if not response.parameters and not any(t.parameters for t in response.outputs):
        assert encode_response_bytes(response, raw) == built.SerializeToString()
    return written


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_every_datatype(datatype: str, raw: bool) -> None:
    data = expected_array(datatype, VALUES[datatype], (2, 2))
    tensor = Tensor("y", datatype, (2, 2), data)
    same_parse(InferenceResponse("m", None, None, (tensor,)), raw)


@pytest.mark.parametrize("raw", [False, True])
def test_ids_versions_parameters_and_several_outputs(raw: bool) -> None:
    label = Tensor("label", "INT64", (3,), np.array([0, -1, 2**40]))
    probs = Tensor("p", "FP32", (3, 1), np.array([[0.5], [0.25], [1]], np.float32), {"k": 3})
    parameters: dict[str, Any] = {"b": True, "i": -5, "u": 2**64 - 1, "f": 0.5, "s": "x"}
    written = same_parse(InferenceResponse("iris", "7", "req-1", (label, probs), parameters), raw)
    assert written.id == "req-1"
    assert written.model_version == "7"


@pytest.mark.parametrize("raw", [False, True])
def test_empty_and_scalar_tensors(raw: bool) -> None:
    empty = Tensor("e", "FP32", (0, 3), np.zeros((0, 3), np.float32))
    scalar = Tensor("s", "INT32", (), np.array(5, np.int32))
    same_parse(InferenceResponse("m", None, "", (empty, scalar)), raw)


def test_varints_are_protobufs() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63 - 1, -1, -(2**63)):
        message = pb.ModelInferResponse.InferOutputTensor(shape=[value])
        assert message.SerializeToString() == b"\x1a" + varint(len(varint(value))) + varint(value)


@pytest.mark.parametrize("raw", [False, True])
def test_a_cached_answer_is_encoded_once_per_kind_of_contents(raw: bool) -> None:
    label = Tensor("label", "INT64", (1,), np.array([2]))
    half = Tensor("h", "FP16", (1,), np.array([0.5], np.float16))
    for outputs in ((label,), (label, half)):
        packed = pack_outputs(outputs)
        first = InferenceResponse("m", None, "a", outputs, packed=packed)
        # The same blob again, with another id: the outputs come from the memo.
        again = InferenceResponse("m", "2", "b", outputs, packed=bytes(packed))
        for response in (first, again):
            written = encode_response_bytes(response, raw)
            assert written == encode_response(response, raw).SerializeToString()


def test_the_memo_forgets_the_oldest_beyond_its_size() -> None:
    memo: Memo[int, int] = Memo(2)
    made: list[int] = []

    def square(key: int) -> int:
        made.append(key)
        return key * key

    assert [memo.get(k, square) for k in (1, 2, 1, 3, 1)] == [1, 4, 1, 9, 1]
    assert made == [1, 2, 3, 1]  # 1 forgotten when 3 came
    assert len(memo) == 2
