"""decode_request refuses malformed requests with a BadRequest that names the tensor."""

from __future__ import annotations

import struct
import time
from typing import Any

import orjson
import pytest

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import decode_request


def one(data: Any = None, *, datatype: Any = "FP32", shape: Any = (2,), **fields: Any) -> bytes:
    """A request with one input named ``bad-tensor``."""
    tensor: dict[str, Any] = {"name": "bad-tensor", "datatype": datatype, "shape": shape}
    if data is not None:
        tensor["data"] = data
    tensor.update(fields)
    return orjson.dumps({"inputs": [tensor]})


def binary(
    raw: bytes, size: Any = None, *, datatype: str = "FP32", shape: Any = (2,)
) -> tuple[bytes, int]:
    """A binary-extension request whose one input claims ``size`` (default: all) of ``raw``."""
    params = {"binary_data_size": len(raw) if size is None else size}
    header = one(datatype=datatype, shape=shape, parameters=params)
    return header + raw, len(header)


def frame(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


TENSOR_ERRORS: list[tuple[str, bytes, int | None, str]] = [
    ("missing datatype", one([1, 2], datatype=None), None, "datatype"),
    ("unknown datatype", one([1, 2], datatype="FP8"), None, "datatype 'FP8'"),
    ("datatype not a string", one([1, 2], datatype=["FP32"]), None, "datatype"),
    ("missing shape", one([1, 2], shape=None), None, "shape"),
    ("shape not a list", one([1, 2], shape=2), None, "shape"),
    ("float dimension", one([1, 2], shape=[2.0]), None, "shape"),
    ("boolean dimension", one([1], shape=[True]), None, "shape"),
    ("negative dimension", one([1, 2], shape=[-2]), None, "negative"),
    ("huge dimension", one([], shape=[0, 2**64 - 1]), None, "too large"),
    ("too few elements", one([1]), None, "1 elements"),
    ("too many elements", one([1, 2, 3]), None, "3 elements"),
    ("ragged nested data", one([[1, 2], [3]], shape=[2, 2]), None, "ragged"),
    ("nested rows mismatch", one([[1, 2, 3, 4]], shape=[2, 2]), None, "nested"),
    ("nested deeper than shape", one([[[1], [2]], [[3], [4]]], shape=[2, 2]), None, "array"),
    ("nested data for flat shape", one([[1, 2]], shape=[2]), None, "nested"),
    ("list inside flat data", one([1, [2]]), None, "array"),
    ("data not a list", one(5), None, "must be an array"),
    ("data an object", one({"a": 1}), None, "must be an array"),
    ("no data at all", one(), None, "neither"),
    ("string in FP32", one(["1.5", 2]), None, "string"),
    ("null in FP32", one([None, 2]), None, "null"),
    ("boolean in FP32", one([True, 2.0]), None, "boolean"),
    ("float in INT32", one([1.5, 2], datatype="INT32"), None, "non-integer"),
    ("integral float in INT32", one([1.0, 2], datatype="INT32"), None, "non-integer"),
    ("boolean in INT32", one([1, True], datatype="INT32"), None, "boolean"),
    ("300 in INT8", one([300, 1], datatype="INT8"), None, "out of range"),
    ("-129 in INT8", one([-129, 1], datatype="INT8"), None, "out of range"),
    ("-1 in UINT8", one([-1, 1], datatype="UINT8"), None, "out of range"),
    ("256 in UINT8", one([256, 1], datatype="UINT8"), None, "out of range"),
    ("70000 in UINT16", one([70000, 1], datatype="UINT16"), None, "out of range"),
    ("2**63 in INT64", one([2**63, 1], datatype="INT64"), None, "out of range"),
    ("-1 in UINT64", one([-1, 1], datatype="UINT64"), None, "out of range"),
    (
        "beyond uint64 in INT64",
        b'{"inputs":[{"name":"bad-tensor","datatype":"INT64",'
        b'"shape":[1],"data":[18446744073709551616]}]}',
        None,
        "non-integer",
    ),
    ("1 in BOOL", one([1, True], datatype="BOOL"), None, "integer"),
    ("string in BOOL", one(["true", True], datatype="BOOL"), None, "string"),
    ("1e39 in FP32", one([1e39, 1]), None, "out of range"),
    ("70000 in FP16", one([70000, 1], datatype="FP16"), None, "out of range"),
    (
        "many, one too big, FP16",
        one([1] * 99 + [-1e6], datatype="FP16", shape=[100]),
        None,
        "out of range",
    ),
    ("number in BYTES", one(["a", 1], datatype="BYTES"), None, "integer"),
    (
        "bytes nested ragged",
        one([["a"], ["b", "c"]], datatype="BYTES", shape=[2, 1]),
        None,
        "ragged",
    ),
    ("parameters not an object", one([1, 2], parameters=[1]), None, "parameters"),
    ("shared memory", one(parameters={"shared_memory_region": "r"}), None, "shared memory"),
    ("data and binary", one([1, 2], parameters={"binary_data_size": 8}), None, "both"),
    ("negative binary size", *binary(b"", -1), "non-negative"),
    ("float binary size", *binary(b"", 8.0), "non-negative"),
    ("boolean binary size", *binary(b"", True), "non-negative"),
    ("binary size beyond body", *binary(bytes(8), 12), "exceeds"),
    ("binary without header", one(parameters={"binary_data_size": 8}), None, "no Inference-Header"),
    ("binary size not shape", *binary(bytes(12)), "needs 8"),
    ("binary BOOL byte 2", *binary(b"\x01\x02", datatype="BOOL"), "0 and 1"),
    ("BYTES prefix cut", *binary(frame(b"ab") + b"\x01\x00", datatype="BYTES"), "ends before"),
    (
        "BYTES element too long",
        *binary(frame(b"ab") + b"\x09\x00\x00\x00ab", datatype="BYTES"),
        "claims 9",
    ),
    ("BYTES too few elements", *binary(frame(b"ab"), datatype="BYTES"), "ends before element 1"),
    ("BYTES trailing bytes", *binary(frame(b"a", b"b") + b"!", datatype="BYTES"), "after"),
    (
        "BYTES elements in binary beyond count",
        *binary(frame(b"a", b"b", b"c"), datatype="BYTES"),
        "after",
    ),
]


@pytest.mark.parametrize(
    ("body", "json_length", "fragment"),
    [case[1:] for case in TENSOR_ERRORS],
    ids=[case[0] for case in TENSOR_ERRORS],
)
def test_tensor_errors_name_the_tensor(body: bytes, json_length: int | None, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_request(body, json_length)
    assert "'bad-tensor'" in str(caught.value)
    assert fragment in str(caught.value)


def test_duplicate_inputs_and_outputs_are_named() -> None:
    tensor = {"name": "twice", "shape": [1], "datatype": "FP32", "data": [1]}
    with pytest.raises(BadRequest, match="input 'twice' appears twice"):
        decode_request(orjson.dumps({"inputs": [tensor, {**tensor, "data": [2]}]}))
    outputs = [{"name": "y"}, {"name": "z"}, {"name": "y"}]
    with pytest.raises(BadRequest, match="output 'y' requested twice"):
        decode_request(orjson.dumps({"inputs": [tensor], "outputs": outputs}))


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        (
            {"name": "out-x", "parameters": {"binary_data": 1}},
            "output 'out-x': parameter binary_data",
        ),
        ({"name": "out-x", "parameters": "yes"}, "output 'out-x': 'parameters'"),
        ({"name": "out-x", "parameters": {"shared_memory_region": "r"}}, "output 'out-x': shared"),
        ({"name": ""}, "output #0"),
        ("out-x", "output #0 must be an object"),
    ],
)
def test_output_errors_name_the_output(output: Any, fragment: str) -> None:
    tensor = {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}
    with pytest.raises(BadRequest) as caught:
        decode_request(orjson.dumps({"inputs": [tensor], "outputs": [output]}))
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("body", "json_length", "fragment"),
    [
        (b"", None, "not valid JSON"),
        (b"{", None, "not valid JSON"),
        (b'{"inputs": []}\xff', None, "not valid JSON"),
        (b'{"id": "\xff", "inputs": []}', None, "not valid JSON"),
        (b"[]", None, "JSON object"),
        (b"{}", None, "'inputs'"),
        (b'{"inputs": {}}', None, "'inputs'"),
        (b'{"inputs": [], "id": 5}', None, "'id'"),
        (b'{"inputs": [], "parameters": []}', None, "'parameters'"),
        (
            b'{"inputs": [], "parameters": {"binary_data_output": "yes"}}',
            None,
            "binary_data_output",
        ),
        (b'{"inputs": [], "outputs": {}}', None, "'outputs'"),
        (b'{"inputs": [5]}', None, "input #0 must be an object"),
        (b'{"inputs": [{"shape": [1]}]}', None, "input #0: 'name'"),
        (b'{"inputs": [{"name": 7}]}', None, "input #0: 'name'"),
        (b'{"inputs": []}', -1, "Inference-Header-Content-Length"),
        (b'{"inputs": []}', 99, "Inference-Header-Content-Length"),
        (b'{"inputs": []}xyz', 14, "3 bytes of binary data"),
        (b'{"inputs": []}', 5, "not valid JSON"),
    ],
)
def test_request_errors(body: bytes, json_length: int | None, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_request(body, json_length)
    assert fragment in str(caught.value)


def test_a_shape_of_millions_of_dimensions_is_refused_at_once() -> None:
    # Multiplying them would take minutes (big integers) on the event loop.
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2] * 10**6}]})
    started = time.perf_counter()
    with pytest.raises(BadRequest, match=r"'x'.*1000000 dimensions"):
        decode_request(body)
    assert time.perf_counter() - started < 1
