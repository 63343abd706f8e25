"""decode_request: every datatype in JSON (flat, nested) and binary, parameters, and the ids."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from memoserve_serving.protocol.datatypes import DTYPES
from memoserve_serving.protocol.request import decode_request

# datatype -> four values (shape [2, 2]) that reach the datatype's limits.
VALUES: dict[str, list[Any]] = {
    "BOOL": [True, False, False, True],
    "INT8": [-128, 127, 0, -1],
    "INT16": [-(2**15), 2**15 - 1, 0, 1],
    "INT32": [-(2**31), 2**31 - 1, 0, 5],
    "INT64": [-(2**63), 2**63 - 1, 0, 7],
    "UINT8": [0, 255, 1, 2],
    "UINT16": [0, 2**16 - 1, 1, 2],
    "UINT32": [0, 2**32 - 1, 1, 2],
    "UINT64": [0, 2**64 - 1, 1, 2],
    "FP16": [0.5, -2.0, 65504.0, 1],
    "FP32": [0.1, -3.4e38, 3, 1.5],
    "FP64": [0.1, 1e308, -5, 2.5e-300],
    # The largest finite BF16 (2**128 - 2**120) and the smallest subnormal (2**-133).
    "BF16": [0.5, -3.3895313892515355e38, 1, 9.183549615799121e-41],
    "BYTES": ["a", "", "é✓", "x\x00y"],
}


def frame(elements: Sequence[bytes]) -> bytes:
    """BYTES binary data, written out by hand: 4-byte little-endian length, then the bytes."""
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def raw_bytes(datatype: str, values: Any) -> bytes:
    """The binary tensor data of ``values``, independently of the code under test."""
    if datatype == "BYTES":
        return frame([value.encode() for value in values])
    return np.array(values, dtype=DTYPES[datatype]).tobytes()


def expected_array(datatype: str, values: Sequence[Any], shape: tuple[int, ...]) -> np.ndarray:
    if datatype == "BYTES":
        array = np.empty(len(values), dtype=object)
        array[:] = [value.encode() for value in values]
        return array.reshape(shape)
    return np.array(values, dtype=DTYPES[datatype]).reshape(shape)


def binary_request(document: dict[str, Any], chunks: Sequence[bytes]) -> tuple[bytes, int]:
    """A binary-extension body: the JSON header, then the tensors' bytes."""
    header = orjson.dumps(document)
    return header + b"".join(chunks), len(header)


def assert_tensor(
    tensor: Any, datatype: str, values: Sequence[Any], shape: tuple[int, ...]
) -> None:
    want = expected_array(datatype, values, shape)
    assert tensor.datatype == datatype
    assert tensor.shape == shape
    assert tensor.data.shape == shape
    assert tensor.data.dtype == want.dtype
    assert tensor.data.tolist() == want.tolist()


@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_json_flat_data(datatype: str) -> None:
    document = {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": datatype, "data": VALUES[datatype]}]
    }
    request = decode_request(orjson.dumps(document))
    assert_tensor(request.inputs[0], datatype, VALUES[datatype], (2, 2))


@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_json_nested_data(datatype: str) -> None:
    values = VALUES[datatype]
    nested = [values[:2], values[2:]]
    document = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": datatype, "data": nested}]}
    request = decode_request(orjson.dumps(document))
    assert_tensor(request.inputs[0], datatype, values, (2, 2))


@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_binary_data(datatype: str) -> None:
    raw = raw_bytes(datatype, VALUES[datatype])
    tensor: dict[str, Any] = {"name": "x", "shape": [2, 2], "datatype": datatype}
    tensor["parameters"] = {"binary_data_size": len(raw), "keep": 1}
    body, json_length = binary_request({"inputs": [tensor]}, [raw])
    decoded = decode_request(body, json_length).inputs[0]
    assert_tensor(decoded, datatype, VALUES[datatype], (2, 2))
    assert decoded.parameters == {"keep": 1}  # binary_data_size is transport only


def test_binary_and_json_inputs_mix_and_take_bytes_in_order() -> None:
    a, c = np.arange(3, dtype="<i4"), np.array([1.5, 2.5], dtype="<f8")
    inputs = [
        {"name": "a", "shape": [3], "datatype": "INT32", "parameters": {"binary_data_size": 12}},
        {"name": "b", "shape": [1], "datatype": "FP32", "data": [7]},
        {"name": "c", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
        {"name": "d", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 13}},
    ]
    body, json_length = binary_request(
        {"inputs": inputs}, [a.tobytes(), c.tobytes(), frame([b"\xff\xfe", b"abc"])]
    )
    request = decode_request(body, json_length)
    assert [t.name for t in request.inputs] == ["a", "b", "c", "d"]
    assert request.inputs[0].data.tolist() == [0, 1, 2]
    assert request.inputs[1].data.tolist() == [7.0]
    assert request.inputs[2].data.tolist() == [1.5, 2.5]
    assert request.inputs[3].data.tolist() == [b"\xff\xfe", b"abc"]


def test_misaligned_binary_data_is_copied_aligned() -> None:
    tensor = {"name": "x", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}
    for pad in range(8):  # JSON whitespace moves the binary section to every alignment
        header = orjson.dumps({"inputs": [tensor]}) + b" " * pad
        body = header + np.array([1.25, -2.0]).tobytes()
        data = decode_request(body, len(header)).inputs[0].data
        assert data.flags.aligned
        assert data.tolist() == [1.25, -2.0]


@pytest.mark.parametrize(
    ("datatype", "shape", "data"),
    [
        ("FP32", [0], []),
        ("FP32", [2, 0], []),
        ("FP32", [2, 0], [[], []]),
        ("BYTES", [0, 3], []),
        ("INT64", [], [5]),
    ],
)
def test_empty_and_scalar_tensors(datatype: str, shape: list[int], data: list[Any]) -> None:
    document = {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
    tensor = decode_request(orjson.dumps(document)).inputs[0]
    assert tensor.shape == tuple(shape)
    assert tensor.data.shape == tuple(shape)


def test_float_tensors_take_json_integers() -> None:
    document = {"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 1.0, -2]}]}
    data = decode_request(orjson.dumps(document)).inputs[0].data
    assert data.dtype == np.float32
    assert data.tolist() == [1.0, 1.0, -2.0]


def test_parameters_keep_what_changes_the_answer_and_drop_transport() -> None:
    document = {
        "id": "r-1",
        "parameters": {"binary_data_output": True, "temperature": 0.5},
        "inputs": [
            {"name": "x", "shape": [1], "datatype": "INT8", "data": [1], "parameters": {"p": "q"}}
        ],
        "outputs": [
            {"name": "y", "parameters": {"binary_data": False, "classification": 2}},
            {"name": "z"},
        ],
    }
    request = decode_request(orjson.dumps(document))
    assert request.id == "r-1"
    assert request.parameters == {"temperature": 0.5}
    assert request.binary_outputs is True
    assert request.inputs[0].parameters == {"p": "q"}
    assert [(o.name, o.binary, dict(o.parameters)) for o in request.outputs] == [
        ("y", False, {"classification": 2}),
        ("z", None, {}),
    ]


def test_defaults_when_optional_fields_are_absent_or_null() -> None:
    document = {
        "inputs": [
            {"name": "x", "shape": [1], "datatype": "BOOL", "data": [True], "parameters": None}
        ]
    }
    request = decode_request(orjson.dumps(document))
    assert (request.id, request.outputs, dict(request.parameters)) == (None, (), {})
    assert request.binary_outputs is False
    assert request.inputs[0].parameters == {}


def test_json_length_equal_to_body_means_no_binary_section() -> None:
    body = orjson.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2]}]})
    assert decode_request(body, len(body)).inputs[0].data.tolist() == [2.0]


def test_unknown_top_level_fields_are_ignored() -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2], "x": 1}], "y": 2}
    )
    assert decode_request(body).inputs[0].name == "x"
