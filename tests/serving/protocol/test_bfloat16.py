"""BF16: JSON numbers round once to nearest-even, binary BF16 is kept bit for bit, outputs go out
as the BF16 they are, and a model sees ml_dtypes' bfloat16."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import ml_dtypes
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memoserve_serving.cache.keys import request_digest
from memoserve_serving.protocol.bfloat16 import pack_json_floats
from memoserve_serving.protocol.datatypes import BF16, DTYPES, datatype_of, dtype_of
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.response import encode_outputs_json, encode_response
from memoserve_serving.protocol.tensors import json_to_raw
from memoserve_serving.protocol.types import InferenceRequest, InferenceResponse, Tensor
from tests.serving.protocol.test_request import binary_request

FAST = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = float(2**128 - 2**120)  # the largest finite BF16, 0x7F7F
HALFWAY = float(2**128 - 2**119)  # halfway from MAX to 2**128: rounds to infinity (MAX is odd)


def reference(value: float) -> int:
    """The BF16 bits of ``value`` rounded once, to nearest-even, by exact arithmetic; 0x7F80
    (infinity) when it rounds beyond the largest BF16."""
    sign = 0x8000 if math.copysign(1.0, value) < 0 else 0
    if value == 0:
        return sign
    exponent = max(math.frexp(abs(value))[1] - 1, -126)  # 2**exponent <= |value|, or subnormal
    ulp = Fraction(2) ** (exponent - 7)  # 8 significant bits
    rounded = round(Fraction(abs(value)) / ulp) * ulp  # round() of a Fraction: ties to even
    if rounded >= 2**128:
        return sign | 0x7F80
    bits = int(np.array([float(rounded)], np.float32).view("<u4")[0])
    assert bits & 0xFFFF == 0, "an exactly rounded BF16 is a float32 with a zero low half"
    return sign | bits >> 16


def bits_of(raw: bytes) -> list[int]:
    return np.frombuffer(raw, "<u2").tolist()


def one_input(**fields: Any) -> bytes:
    return orjson.dumps({"inputs": [{"name": "x", "datatype": "BF16", **fields}]})


EXACT = [
    (1.0, 0x3F80),
    (1, 0x3F80),
    (1.5, 0x3FC0),
    (-2, 0xC000),
    (0.1, 0x3DCD),  # 0x3DCCCCCD in float32: rounds up
    (0.0, 0x0000),
    (-0.0, 0x8000),  # a float keeps the sign of zero
    (0, 0x0000),
    (1 + 2**-8, 0x3F80),  # a tie: to the even 1.0
    (1 + 3 * 2**-8, 0x3F82),  # a tie: to the even 1 + 2**-6
    (1 + 2**-8 + 2**-40, 0x3F81),  # just above a tie: up (float32 would make it the tie)
    (1 + 2**-8 - 2**-40, 0x3F80),
    (2.0**-126, 0x0080),  # the smallest normal
    (2.0**-133, 0x0001),  # the smallest subnormal
    (2.0**-134, 0x0000),  # a tie between 0 and the smallest subnormal: to 0
    (-(2.0**-134), 0x8000),
    (2.0**-134 * 1.0000001, 0x0001),
    (3 * 2.0**-134, 0x0002),  # a tie between two subnormals: to the even one
    (2.0**-149, 0x0000),  # float32's smallest subnormal is far below half of BF16's
    (-1e-300, 0x8000),
    (MAX, 0x7F7F),
    (-MAX, 0xFF7F),
    (math.nextafter(HALFWAY, 0), 0x7F7F),
    (16777217, 0x4B80),  # integers become floats as struct makes them
    (2**64 - 1, 0x5F80),
]


@pytest.mark.parametrize(("value", "bits"), EXACT, ids=[repr(v) for v, _ in EXACT])
def test_json_numbers_pack_to_these_exact_bits(value: float, bits: int) -> None:
    assert bits_of(json_to_raw("BF16", (1,), [value])) == [bits]
    assert reference(value) == bits


@pytest.mark.parametrize("value", [HALFWAY, -HALFWAY, 3.4e38, 1e39, -1.7976931348623157e308])
def test_values_that_round_to_infinity_are_a_400_naming_the_tensor(value: float) -> None:
    with pytest.raises(ValueError, match="out of range for BF16"):
        json_to_raw("BF16", (2,), [1.0, value])
    with pytest.raises(BadRequest, match="input 'x': data has a value out of range for BF16"):
        decode_request(one_input(shape=[2], data=[1.0, value]))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [([1.0, True], "boolean"), (["1"], "string"), ([None], "null"), ([[1.0]], "array")],
)
def test_only_numbers_are_bf16_data(data: list[Any], fragment: str) -> None:
    with pytest.raises(BadRequest, match=f"input 'x': BF16 data contains {fragment}"):
        decode_request(one_input(shape=[len(data)], data=data))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_json_cannot_carry_nan_or_infinity(literal: bytes) -> None:
    body = b'{"inputs":[{"name":"x","datatype":"BF16","shape":[1],"data":[' + literal + b"]}]}"
    with pytest.raises(BadRequest, match="not valid JSON"):
        decode_request(body)


@FAST
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_any_float_rounds_once_to_nearest_even(values: list[float]) -> None:
    want = [reference(value) for value in values]
    if 0x7F80 in [bits & 0x7FFF for bits in want]:
        with pytest.raises(ValueError, match="out of range for BF16"):
            json_to_raw("BF16", (len(values),), values)
    else:
        assert bits_of(json_to_raw("BF16", (len(values),), values)) == want


@FAST
@given(st.integers(0, 0x7F7E), st.sampled_from([-1, 0, 1]), st.booleans())
def test_values_at_and_beside_every_tie_round_to_nearest_even(
    bits: int, nudge: int, negative: bool
) -> None:
    """Halfway between two neighbours (and one double ulp either side), normal or subnormal."""
    low, high = np.array([bits, bits + 1], "<u2").view(BF16).astype(np.float64)
    value = (low + high) / 2 * (-1 if negative else 1)  # exact in float64
    value = float(np.nextafter(value, math.inf * nudge)) if nudge else float(value)
    toward = -nudge if negative else nudge  # +1: a larger magnitude
    magnitude = bits + 1 if toward > 0 or (toward == 0 and bits % 2) else bits
    want = magnitude | (0x8000 if negative else 0)
    assert reference(value) == want
    assert bits_of(pack_json_floats(value)) == [want]


@FAST
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=8))
def test_float32_values_round_as_ml_dtypes_rounds_them(values: list[float]) -> None:
    with np.errstate(over="ignore"):
        want = np.array(values, np.float32).astype(BF16)
    if np.isinf(want.astype(np.float32)).any():
        with pytest.raises(OverflowError):
            pack_json_floats(*values)
    else:
        assert pack_json_floats(*values) == want.tobytes()


@FAST
@given(st.integers(-(2**64), 2**64))
def test_integers_pack_as_the_float_they_make(value: int) -> None:
    assert bits_of(json_to_raw("BF16", (1,), [value])) == [reference(float(value))]


def test_binary_bf16_is_kept_bit_for_bit_nan_payloads_and_infinities_too() -> None:
    bits = [0x7FC1, 0xFFA0, 0x7F80, 0xFF80, 0x8000, 0x0001]
    raw = np.array(bits, "<u2").tobytes()
    document = {"inputs": [{"name": "x", "datatype": "BF16", "shape": [2, 3]}]}
    document["inputs"][0]["parameters"] = {"binary_data_size": len(raw)}
    (tensor,) = decode_request(*binary_request(document, [raw])).inputs
    assert tensor.data.dtype == BF16
    assert tensor.data.shape == (2, 3)
    assert tensor.data.view("<u2").ravel().tolist() == bits
    assert bytes(tensor.raw_bytes()) == raw


def test_json_and_binary_bf16_share_a_key_and_the_key_hashes_bf16_bytes() -> None:
    values = [1.5, -0.0, 0.1, 2.0**-133]
    as_json = decode_request(one_input(shape=[2, 2], data=[values[:2], values[2:]]))
    raw = np.array([0x3FC0, 0x8000, 0x3DCD, 0x0001], "<u2").tobytes()
    binary = one_input(shape=[2, 2], parameters={"binary_data_size": len(raw)})
    as_binary = decode_request(binary + raw, len(binary))
    assert bytes(as_json.inputs[0].raw_bytes()) == raw
    assert request_digest(as_json) == request_digest(as_binary)
    fp32 = {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": values}
    as_fp32 = decode_request(orjson.dumps({"inputs": [fp32]}))
    assert request_digest(as_fp32) != request_digest(as_json)


def test_hand_built_bf16_tensors_hash_as_their_bf16_bytes() -> None:
    decoded = decode_request(one_input(shape=[3], data=[1.0, 0.1, -0.0]))
    for array in (
        np.array([1.0, 0.1, -0.0], dtype=BF16),
        np.array([1.0, 0.1, -0.0], dtype=np.float32),  # cast as ml_dtypes casts: nearest-even
        np.array([[1.0, 99.0], [0.1, 99.0], [-0.0, 99.0]], dtype=BF16)[:, 0],  # not contiguous
    ):
        by_hand = InferenceRequest(None, (Tensor("x", "BF16", (3,), array),))
        assert request_digest(by_hand) == request_digest(decoded)


def test_json_outputs_are_numbers_that_read_back_as_the_same_bf16() -> None:
    bits = [0x3DCD, 0x8000, 0x7F7F, 0x0001, 0x7FC0, 0xFF80]
    tensor = Tensor("y", "BF16", (6,), np.array(bits, "<u2").view(BF16))
    (output,) = orjson.loads(encode_outputs_json((tensor,)) or b"")
    assert output["datatype"] == "BF16"
    assert output["data"] == [0.100097656, -0.0, 3.3895314e38, 9.1835e-41, None, None]
    finite = output["data"][:4]
    assert bits_of(json_to_raw("BF16", (4,), finite)) == bits[:4]  # NaN, infinities: null


def test_binary_outputs_are_the_bf16_bytes() -> None:
    bits = [0x3DCD, 0x7FC1, 0xFF80]
    tensor = Tensor("y", "BF16", (3,), np.array(bits, "<u2").view(BF16))
    asked = InferenceRequest("r", (), (), {}, binary_outputs=True)
    body, json_length = encode_response(InferenceResponse("m", None, "r", (tensor,)), asked)
    assert json_length is not None
    assert body[json_length:] == np.array(bits, "<u2").tobytes()
    assert b'"binary_data_size":6' in body[:json_length]


def test_the_dtype_is_ml_dtypes_bfloat16_and_maps_back() -> None:
    assert dtype_of("BF16") == DTYPES["BF16"] == BF16 == np.dtype(ml_dtypes.bfloat16)
    assert BF16.itemsize == 2
    assert datatype_of(np.dtype(ml_dtypes.bfloat16)) == "BF16"
    assert datatype_of(np.dtype(np.float16)) == "FP16"
    for other in ("V2", [("a", "<u1"), ("b", "<u1")]):
        with pytest.raises(ValueError, match="no v2 datatype"):
            datatype_of(np.dtype(other))


def test_a_model_computes_with_the_array_it_gets() -> None:
    (tensor,) = decode_request(one_input(shape=[3], data=[1.5, -2, 0.1])).inputs
    doubled = tensor.data * 2
    assert doubled.dtype == BF16
    assert doubled.astype(np.float32).tolist() == [3.0, -4.0, 0.2001953125]
    assert not tensor.data.flags.writeable
