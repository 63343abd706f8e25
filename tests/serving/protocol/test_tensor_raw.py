"""Tensors kept in their binary tensor data encoding: the arrays made from it on first use equal
the arrays numpy makes of the same values, the raw bytes equal an array's little-endian bytes, and
``struct`` packing of JSON numbers rounds and overflows exactly like numpy's casts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memoserve_serving.cache.keys import RequestKeys, request_digest
from memoserve_serving.protocol.datatypes import DTYPES
from memoserve_serving.protocol.request import _COPY_AT_MOST, decode_request
from memoserve_serving.protocol.tensors import json_to_raw
from memoserve_serving.protocol.types import InferenceRequest, Tensor
from tests.serving.protocol.test_request import (
    VALUES,
    binary_request,
    expected_array,
    frame,
    raw_bytes,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGEST = "0123456789abcdef" * 4
FIXED = sorted(set(DTYPES) - {"BYTES"})
FLOATS = ("FP16", "FP32", "FP64")
INTEGERS = sorted(d for d in FIXED if "INT" in d)


def one_input(datatype: str, shape: list[int], **fields: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": datatype, "shape": shape, **fields}]}


def assert_data(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    if got.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        assert got.tobytes() == want.tobytes()
        assert got.flags.aligned


@pytest.mark.parametrize("datatype", sorted(VALUES))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_lazy_data_equals_eager_data_and_raw_bytes_are_the_binary_encoding(
    datatype: str, binary: bool
) -> None:
    values = VALUES[datatype]
    raw = raw_bytes(datatype, values)
    if binary:
        document = one_input(datatype, [2, 2], parameters={"binary_data_size": len(raw)})
        tensor = decode_request(*binary_request(document, [raw])).inputs[0]
    else:
        tensor = decode_request(orjson.dumps(one_input(datatype, [2, 2], data=values))).inputs[0]
    assert bytes(tensor.raw_bytes()) == raw
    want = expected_array(datatype, values, (2, 2))
    data = tensor.data
    assert_data(data, want)
    assert tensor.data is data  # made once
    if datatype != "BYTES":
        assert not data.flags.writeable  # a view of the bytes the cache key hashed
    # The same tensor built from its array encodes to the same bytes.
    assert bytes(Tensor("x", datatype, (2, 2), want).raw_bytes()) == raw


@pytest.mark.parametrize("datatype", sorted(DTYPES))
def test_binary_inputs_either_side_of_the_copy_limit_decode_and_hash_like_json(
    datatype: str,
) -> None:
    itemsize = 8 if datatype == "BYTES" else DTYPES[datatype].itemsize
    for count in (_COPY_AT_MOST // itemsize, _COPY_AT_MOST // itemsize + 1):
        rng = np.random.default_rng(count)
        if datatype == "BYTES":
            values: list[Any] = [f"{i:04d}" for i in range(count)]  # 4 + 4 bytes each
            array = expected_array(datatype, values, (count,))
            raw = frame([value.encode() for value in values])
        else:
            array = rng.integers(0, 2, count).astype(DTYPES[datatype])
            values = array.tolist()
            raw = array.tobytes()
        as_json = decode_request(orjson.dumps(one_input(datatype, [count], data=values)))
        header = orjson.dumps(
            one_input(datatype, [count], parameters={"binary_data_size": len(raw)})
        )
        header += b" " * (-len(header) % 8)  # binary data aligned: no copy needed
        body = header + raw
        as_binary = decode_request(body, len(header))
        for request in (as_json, as_binary):
            assert_data(request.inputs[0].data, array)
            assert bytes(request.inputs[0].raw_bytes()) == raw
        assert RequestKeys("ns", DIGEST)(as_json) == RequestKeys("ns", DIGEST)(as_binary)
        if datatype != "BYTES" and len(raw) > _COPY_AT_MOST:
            # Large binary inputs stay views of the body: no copy of a large tensor.
            assert np.shares_memory(as_binary.inputs[0].data, np.frombuffer(body, np.uint8))


@pytest.mark.parametrize(
    ("datatype", "shape", "data"),
    [
        ("FP32", [0], []),
        ("FP32", [2, 0], [[], []]),
        ("BYTES", [0, 3], []),
        ("INT64", [], [5]),
        ("BYTES", [], ["s"]),
        ("BOOL", [1, 1, 1], [[[True]]]),
        ("BF16", [1, 0], [[]]),
        ("BF16", [], [2.5]),
    ],
)
def test_lazy_data_of_empty_scalar_and_nested_tensors(
    datatype: str, shape: list[int], data: list[Any]
) -> None:
    tensor = decode_request(orjson.dumps(one_input(datatype, shape, data=data))).inputs[0]
    flat = np.array(data, dtype=object).ravel().tolist() if data else []
    assert_data(tensor.data, expected_array(datatype, flat, tuple(shape)))


def test_reading_data_does_not_change_the_key() -> None:
    body = orjson.dumps(one_input("FP16", [1, 3], data=[0.1, -2, 65504]))
    request = decode_request(body)
    before = request_digest(request)
    assert request.inputs[0].data.tolist() == [[np.float16(0.1), -2.0, 65504.0]]
    assert request_digest(request) == before == request_digest(decode_request(body))


@pytest.mark.parametrize("datatype", FIXED)
def test_raw_bytes_of_any_array_are_row_major_little_endian(datatype: str) -> None:
    values = np.array(VALUES[datatype], dtype=DTYPES[datatype]).reshape(2, 2)
    want = values.tobytes()
    swapped = values.astype(values.dtype.newbyteorder(">"))
    for data in (values, np.asfortranarray(values), swapped, values.T.copy().T):
        tensor = Tensor("x", datatype, (2, 2), data)
        assert tensor.data is data
        assert bytes(tensor.raw_bytes()) == want
        assert len(tensor.raw_bytes()) == len(want)
    assert bytes(Tensor("x", "FP32", (2,), np.array([1.5, 2.0])).raw_bytes()) == (
        np.array([1.5, 2.0], "<f4").tobytes()
    )


def test_raw_bytes_of_bytes_arrays_are_framed() -> None:
    for data in (np.array(["ab", "c"]), np.array([b"ab", b"c"], dtype=object)):
        assert Tensor("w", "BYTES", (2,), data).raw_bytes() == frame([b"ab", b"c"])


def test_from_raw_keeps_the_bytes_and_makes_the_array_on_first_use() -> None:
    raw = np.array([[1, -1], [300, 7]], "<i2").tobytes()
    tensor = Tensor.from_raw("x", "INT16", (2, 2), raw, {"unit": "cm"})
    assert tensor.raw_bytes() is raw
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", "INT16", (2, 2))
    assert tensor.parameters == {"unit": "cm"}
    assert tensor.data.tolist() == [[1, -1], [300, 7]]
    assert tensor.data.dtype == np.dtype("<i2")
    words = Tensor.from_raw("w", "BYTES", (1, 2), frame([b"\xff", b""]))
    assert words.data.shape == (1, 2)
    assert words.data.tolist() == [[b"\xff", b""]]
    assert words.parameters == {}


def test_constructor_defaults_and_repr() -> None:
    first = Tensor("a", "INT8", (1,), np.array([1], np.int8))
    second = Tensor("b", "INT8", (1,), np.array([2], np.int8))
    assert first.parameters == {}
    assert first.parameters is not second.parameters
    lazy = Tensor.from_raw("c", "INT8", (1,), b"\x03")
    assert "name='c'" in repr(lazy)
    assert "array([3]" in repr(lazy)


def test_hand_built_and_decoded_requests_share_a_key() -> None:
    decoded = decode_request(orjson.dumps(one_input("INT32", [1, 2], data=[7, -7])))
    array = np.array([[7, -7]])
    for shape in ((1, 2), array.shape, tuple(np.array(array.shape))):  # numpy integers too
        by_hand = InferenceRequest(None, (Tensor("x", "INT32", shape, array),))
        assert request_digest(by_hand) == request_digest(decoded)


@FAST
@given(
    st.sampled_from(FLOATS),
    st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**64 - 1)),
)
def test_float_packing_rounds_and_overflows_like_numpy(datatype: str, values: list[Any]) -> None:
    with np.errstate(over="ignore"):
        want = np.array([float(value) for value in values], np.float64).astype(DTYPES[datatype])
    if np.isinf(want).any():
        with pytest.raises(ValueError, match=f"out of range for {datatype}"):
            json_to_raw(datatype, (len(values),), values)
    else:
        assert json_to_raw(datatype, (len(values),), values) == want.tobytes()


@pytest.mark.parametrize(
    ("datatype", "value", "fits"),
    [
        ("FP16", 65504.0, True),
        ("FP16", 65519.999, True),  # rounds down to 65504
        ("FP16", 65520.0, False),  # halfway to 2**16: rounds to infinity
        ("FP16", -65520.0, False),
        ("FP16", 2.0**-25, True),  # halfway to the smallest subnormal: rounds to zero (even)
        ("FP16", 2.0**-25 * 1.0000001, True),  # just above: the smallest subnormal
        ("FP32", float(2**128 - 2**104), True),
        ("FP32", math.nextafter(float(2**128 - 2**103), 0), True),  # rounds down to the max
        ("FP32", float(2**128 - 2**103), False),
        ("FP32", -1e39, False),
        ("FP64", 1.7976931348623157e308, True),
    ],
)
def test_float_range_limits(datatype: str, value: float, fits: bool) -> None:
    if fits:
        want = np.array([value], np.float64).astype(DTYPES[datatype]).tobytes()
        assert json_to_raw(datatype, (1,), [value]) == want
    else:
        with pytest.raises(ValueError, match="out of range"):
            json_to_raw(datatype, (1,), [value])


@FAST
@given(
    st.sampled_from(INTEGERS),
    st.lists(st.integers(-(2**64), 2**64 + 1), max_size=5),
)
def test_integer_packing_checks_each_types_range(datatype: str, values: list[int]) -> None:
    info = np.iinfo(DTYPES[datatype])
    if all(info.min <= value <= info.max for value in values):
        want = np.array(values, DTYPES[datatype]).tobytes()
        assert json_to_raw(datatype, (len(values),), values) == want
    else:
        with pytest.raises(ValueError, match=f"out of range for {datatype}"):
            json_to_raw(datatype, (len(values),), values)


@pytest.mark.parametrize(
    ("datatype", "values", "fragment"),
    [
        ("FP32", [1.0, True], "boolean"),
        ("FP64", [False], "boolean"),
        ("INT64", [1, True], "boolean"),
        ("UINT8", [1.0], "non-integer"),
        ("INT64", [2**63, 1.5], "non-integer"),  # the type problem wins over the range
        ("FP32", [1e39, None], "null"),
        ("FP16", [1, "2"], "string"),
        ("FP64", [[1.0]], "array"),
        ("BOOL", [1], "integer"),
        ("BOOL", [0.0], "non-integer"),
        ("INT8", ["1"], "string"),
        ("UINT64", [{}], "object"),
    ],
)
def test_struct_never_sees_a_value_of_the_wrong_type(
    datatype: str, values: list[Any], fragment: str
) -> None:
    with pytest.raises(ValueError, match=f"{datatype} data contains {fragment}"):
        json_to_raw(datatype, (len(values),), values)


def test_many_sizes_pack_correctly_past_the_packer_cache() -> None:
    for count in range(200):
        values = [i / 7 for i in range(count)]
        want = np.array(values, np.float32).tobytes()
        assert json_to_raw("FP32", (count,), values) == want
        assert json_to_raw("FP32", (1, count), [values]) == want


@FAST
@given(st.sampled_from(["FP16", "FP32"]), st.integers(0, 2**32 - 1), st.sampled_from([-1, 0, 1]))
def test_values_near_halfway_round_like_numpy(datatype: str, bits: int, nudge: int) -> None:
    """Halfway between two neighbours (and one double ulp either side): round to nearest-even."""
    width = DTYPES[datatype].itemsize * 8
    bits %= 2 ** (width - 1) - 1  # a positive value and its successor; negate half of them
    pair = np.array([bits, bits + 1], f"<u{width // 8}").view(DTYPES[datatype]).astype(float)
    if not np.isfinite(pair).all():
        return
    value = (pair[0] + pair[1]) / 2 * (-1) ** bits  # exact in float64
    value = float(np.nextafter(value, np.inf * nudge)) if nudge else float(value)
    with np.errstate(over="ignore"):
        want = np.array([value]).astype(DTYPES[datatype])
    if np.isinf(want).any():
        with pytest.raises(ValueError, match="out of range"):
            json_to_raw(datatype, (1,), [value])
    else:
        assert json_to_raw(datatype, (1,), [value]) == want.tobytes()
