"""Properties over random tensors and random garbage (hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays, from_dtype
from tritonclient.http import InferResult

from memoserve_serving.cache.keys import RequestKeys
from memoserve_serving.protocol.blob import pack_outputs, unpack_outputs
from memoserve_serving.protocol.datatypes import BF16, DTYPES
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.response import encode_response
from memoserve_serving.protocol.types import InferenceRequest, InferenceResponse
from tests.serving.protocol.test_request import binary_request, raw_bytes

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGEST = "d" * 64
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
FLOATS = ("FP16", "FP32", "FP64", "BF16")
# Every finite BF16 (exponent bits not all ones), -0.0 and the subnormals included, as its bits.
BF16_BITS = st.integers(0, 0xFFFF).filter(lambda bits: bits & 0x7F80 != 0x7F80)


def elements(datatype: str) -> st.SearchStrategy[Any]:
    if datatype.startswith("FP"):
        widths: dict[str, Literal[16, 32, 64]] = {"FP16": 16, "FP32": 32, "FP64": 64}
        return st.floats(width=widths[datatype], allow_nan=False, allow_infinity=False)
    return from_dtype(DTYPES[datatype])


@st.composite
def tensors(draw: st.DrawFn, name: str) -> tuple[str, tuple[int, ...], np.ndarray]:
    datatype = draw(st.sampled_from(sorted(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    count = int(np.prod(shape))
    if datatype == "BYTES":
        strings = draw(st.lists(TEXT, min_size=count, max_size=count))
        array = np.empty(len(strings), dtype=object)
        array[:] = [s.encode() for s in strings]
        return datatype, shape, array.reshape(shape)
    if datatype == "BF16":  # hypothesis makes no arrays of an extension dtype
        bits = draw(st.lists(BF16_BITS, min_size=count, max_size=count))
        return datatype, shape, np.array(bits, "<u2").view(BF16).reshape(shape)
    return datatype, shape, draw(arrays(DTYPES[datatype], shape, elements=elements(datatype)))


def json_data(draw: st.DrawFn, datatype: str, array: np.ndarray) -> Any:
    nested = array.ndim > 0 and draw(st.booleans())
    data = array.tolist() if nested else array.ravel().tolist()
    if datatype == "BYTES":
        return json.loads(json.dumps(data, default=bytes.decode))
    if datatype in FLOATS and draw(st.booleans()):
        return whole_floats_as_ints(data)  # 1 and 1.0 mean the same float
    return data


def whole_floats_as_ints(data: Any) -> Any:
    if isinstance(data, list):
        return [whole_floats_as_ints(item) for item in data]
    # JSON -0 is the integer 0: only 0.0 keeps the sign of a negative zero.
    return int(data) if data.is_integer() and 0 < abs(data) < 2**53 else data


@st.composite
def request_pairs(draw: st.DrawFn) -> tuple[list[Any], tuple[bytes, int | None], tuple[bytes, int]]:
    """The same random tensors as one all-JSON request and one mostly binary, shuffled request."""
    names = draw(
        st.lists(st.text("abcxyz", min_size=1, max_size=3), min_size=1, max_size=3, unique=True)
    )
    specs = [(name, *draw(tensors(name))) for name in names]
    json_inputs = []
    binary_inputs, chunks = [], []
    for name, datatype, shape, array in draw(st.permutations(specs)):
        tensor = {"name": name, "datatype": datatype, "shape": list(shape)}
        json_inputs.append({**tensor, "data": json_data(draw, datatype, array)})
        if draw(st.booleans()):
            values = [b.decode() for b in array.ravel()] if datatype == "BYTES" else array.ravel()
            raw = raw_bytes(datatype, values)
            binary_inputs.append({**tensor, "parameters": {"binary_data_size": len(raw)}})
            chunks.append(raw)
        else:
            binary_inputs.append({**tensor, "data": json_data(draw, datatype, array)})
    json_inputs = [json_inputs[i] for i in draw(st.permutations(range(len(json_inputs))))]
    indent = draw(st.sampled_from([None, 1, 4]))
    as_json = json.dumps({"id": "j", "inputs": json_inputs}, indent=indent).encode()
    return specs, (as_json, None), binary_request({"id": "b", "inputs": binary_inputs}, chunks)


def same_data(got: np.ndarray, want: np.ndarray) -> bool:
    if got.dtype == object:
        return bool(got.shape == want.shape and got.tolist() == want.tolist())
    return bool(
        got.shape == want.shape and got.dtype == want.dtype and got.tobytes() == want.tobytes()
    )


@FAST
@given(request_pairs())
def test_json_and_binary_requests_decode_alike_and_share_a_key(pair: Any) -> None:
    specs, as_json, as_binary = pair
    from_json, from_binary = decode_request(*as_json), decode_request(*as_binary)
    for request in (from_json, from_binary):
        by_name = {tensor.name: tensor for tensor in request.inputs}
        for name, datatype, shape, array in specs:
            assert (by_name[name].datatype, by_name[name].shape) == (datatype, shape)
            assert same_data(by_name[name].data, array)
    assert RequestKeys("ns", DIGEST)(from_json) == RequestKeys("ns", DIGEST)(from_binary)


@FAST
@given(request_pairs(), st.booleans())
def test_outputs_round_trip_through_blob_and_response(pair: Any, binary: bool) -> None:
    request = decode_request(*pair[2])
    outputs = unpack_outputs(pack_outputs(request.inputs))
    asked = InferenceRequest("r", (), (), {}, binary_outputs=binary)
    body, json_length = encode_response(InferenceResponse("m", None, "r", outputs), asked)
    result = InferResult.from_response_body(body, header_length=json_length)
    for tensor in request.inputs:
        got = result.as_numpy(tensor.name)
        if tensor.datatype == "BYTES":
            want = [b if binary else b.decode() for b in tensor.data.ravel().tolist()]
            assert got.ravel().tolist() == want
        else:
            assert same_data(got.reshape(tensor.shape), tensor.data)


def must_be_bad_request_or_sound(body: bytes, json_length: int | None) -> None:
    """Anything decode_request accepts, the key and the codecs must handle."""
    try:
        request = decode_request(body, json_length)
    except BadRequest:
        return
    RequestKeys("ns", DIGEST)(request)
    for tensor in request.inputs:
        assert tensor.data.shape == tensor.shape
    encode_response(
        InferenceResponse("m", None, None, unpack_outputs(pack_outputs(request.inputs))), request
    )


@FAST
@given(st.binary(max_size=300), st.none() | st.integers(-3, 310))
def test_random_bytes_only_raise_bad_request(body: bytes, json_length: int | None) -> None:
    must_be_bad_request_or_sound(body, json_length)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@FAST
@given(JSON_VALUES)
def test_random_json_only_raises_bad_request(value: Any) -> None:
    must_be_bad_request_or_sound(json.dumps(value).encode(), None)


def mutate(draw: Callable[[st.SearchStrategy[Any]], Any], node: Any) -> Any:
    """``node`` with one randomly chosen subtree replaced by a random JSON value, or dropped."""
    if isinstance(node, dict) and node and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.integers(0, 4)) == 0:
            return {k: v for k, v in node.items() if k != key}
        return {**node, key: mutate(draw, node[key])}
    if isinstance(node, list) and node and draw(st.integers(0, 3)):
        index = draw(st.integers(0, len(node) - 1))
        return [*node[:index], mutate(draw, node[index]), *node[index + 1 :]]
    return draw(JSON_VALUES)


@FAST
@given(request_pairs(), st.data())
def test_mutated_requests_only_raise_bad_request(pair: Any, data: st.DataObject) -> None:
    body, json_length = pair[2]
    document = mutate(data.draw, orjson.loads(body[:json_length]))
    header = json.dumps(document).encode()
    must_be_bad_request_or_sound(header + body[json_length:], len(header))
    shift = data.draw(st.integers(-4, 4))
    must_be_bad_request_or_sound(body, json_length + shift)
    damaged = bytearray(body)
    damaged[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    must_be_bad_request_or_sound(bytes(damaged), json_length)
