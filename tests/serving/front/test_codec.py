"""What the front sends its upstream (upstream/codec.py), read back by memoserve's own v2
request decoder: JSON for any upstream, all binary for one that serves the extension."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from memoserve_serving.protocol.request import decode_request
from memoserve_serving.upstream.codec import encode_request

WITH_NAN = [1.5, math.nan, math.inf, -0.0]


def client_request(**extra: object) -> bytes:
    document = {
        "id": "r1",
        "parameters": {"tenant": "a"},
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.5, 2.0, 3.25, -0.0]},
            {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["ab", "c"]},
        ],
        **extra,
    }
    return orjson.dumps(document)


def test_binary_sends_every_input_as_bytes_and_asks_all_outputs_binary() -> None:
    request = decode_request(client_request())
    body, json_length = encode_request(request, (), binary=True)
    assert json_length is not None
    header = orjson.loads(body[:json_length])
    assert all("data" not in entry for entry in header["inputs"])
    assert header["parameters"] == {"tenant": "a", "binary_data_output": True}
    sent = decode_request(body, json_length)
    assert sent.id == "r1"
    for mine, theirs in zip(request.inputs, sent.inputs, strict=True):
        assert (theirs.name, theirs.datatype) == (mine.name, mine.datatype)
        assert theirs.shape == mine.shape
        assert theirs.data.tolist() == mine.data.tolist()
    assert sent.binary_outputs


def test_binary_asks_each_wanted_output_binary_keeping_its_parameters() -> None:
    outputs = [{"name": "label", "parameters": {"classification": 2}}]
    request = decode_request(client_request(outputs=outputs))
    body, json_length = encode_request(request, ("label", "prob"), binary=True)
    assert json_length is not None
    header = orjson.loads(body[:json_length])
    assert header["outputs"] == [
        {"name": "label", "parameters": {"classification": 2, "binary_data": True}},
        {"name": "prob", "parameters": {"binary_data": True}},
    ]
    assert "binary_data_output" not in header["parameters"]


def test_values_json_cannot_carry_cross_binary_intact() -> None:
    raw = np.array(WITH_NAN, dtype="<f4").tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    request = decode_request(header + raw, len(header))
    body, json_length = encode_request(request, (), binary=True)
    sent = decode_request(body, json_length).inputs[0].data
    assert np.array_equal(sent.ravel(), np.array(WITH_NAN, dtype=np.float32), equal_nan=True)
    assert math.copysign(1, float(sent.ravel()[3])) == -1  # -0.0 stays negative


@pytest.mark.parametrize("binary", [False, True])
def test_either_way_the_upstream_reads_the_same_tensors(binary: bool) -> None:
    request = decode_request(client_request())
    body, json_length = encode_request(request, (), binary=binary)
    assert (json_length is not None) == binary  # JSON needs no binary part here
    sent = decode_request(body, json_length)
    assert [t.data.tolist() for t in sent.inputs] == [t.data.tolist() for t in request.inputs]
    assert sent.parameters == {"tenant": "a"}
